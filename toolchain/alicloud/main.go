// pulumi-resource-alicloud for ha-webapp: the Terraform AliCloud provider served by the Go proxy,
// bridged with pulumi-terraform-bridge's tfbridge.Main. Only the resource types our program uses are
// mapped; their tokens are exactly the ones the Python SDK pulumi_alicloud 4.0.0 sends.
package main

import (
	"github.com/aliyun/terraform-provider-alicloud/alicloud"
	"github.com/hashicorp/terraform-plugin-sdk/helper/schema"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
	shimv1 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v1"
)

// version is what the provider reports to the engine (GetPluginInfo, --version). build.sh sets it with
// -ldflags "-X main.version=..." to the SDK's plugin version plus semver build metadata naming the
// bridged Terraform provider, e.g. 4.0.0+tf.alicloud.1.285.0.
var version = "4.0.0"

// resources maps a Terraform resource type to the Pulumi module and type name the SDK uses; the token
// sent by the SDK is alicloud:<module>/<lowerCamelName>:<Name> (e.g. alicloud:vpc/network:Network).
// Field names need no entry: the bridge camelCases the Terraform names exactly as the SDK does, and
// pulumi-alicloud renames no field of these types for Python (its overrides here are C#-only).
// Add a line here when the program starts using another resource type.
var resources = map[string][2]string{
	"alicloud_vpc":                                {"vpc", "Network"},
	"alicloud_vswitch":                            {"vpc", "Switch"},
	"alicloud_security_group":                     {"ecs", "SecurityGroup"},
	"alicloud_security_group_rule":                {"ecs", "SecurityGroupRule"},
	"alicloud_instance":                           {"ecs", "Instance"},
	"alicloud_ecs_ram_role_attachment":            {"ecs", "RamRoleAttachment"},
	"alicloud_eip_address":                        {"ecs", "EipAddress"},
	"alicloud_eip_association":                    {"ecs", "EipAssociation"},
	"alicloud_ram_role":                           {"ram", "Role"},
	"alicloud_ram_policy":                         {"ram", "Policy"},
	"alicloud_ram_role_policy_attachment":         {"ram", "RolePolicyAttachment"},
	"alicloud_kms_secret":                         {"kms", "Secret"},
	"alicloud_db_instance":                        {"rds", "Instance"},
	"alicloud_rds_account":                        {"rds", "RdsAccount"},
	"alicloud_db_account_privilege":               {"rds", "AccountPrivilege"},
	"alicloud_db_database":                        {"rds", "Database"},
	"alicloud_db_backup_policy":                   {"rds", "BackupPolicy"},
	"alicloud_slb_load_balancer":                  {"slb", "ApplicationLoadBalancer"},
	"alicloud_slb_listener":                       {"slb", "Listener"},
	"alicloud_slb_server_group":                   {"slb", "ServerGroup"},
	"alicloud_slb_server_group_server_attachment": {"slb", "ServerGroupServerAttachment"},
	"alicloud_slb_server_certificate":             {"slb", "ServerCertificate"},
	"alicloud_alidns_record":                      {"dns", "AlidnsRecord"},
	"alicloud_oos_secret_parameter":               {"oos", "SecretParameter"},
	"alicloud_cms_alarm_contact":                  {"cms", "AlarmContact"},
	"alicloud_cms_alarm_contact_group":            {"cms", "AlarmContactGroup"},
	"alicloud_cms_alarm":                          {"cms", "Alarm"},
	"alicloud_log_project":                        {"log", "Project"},
	"alicloud_log_store":                          {"log", "Store"},
}

// fields restates the field settings pulumi_alicloud 4.0.0 was generated with where the bridge's default
// would differ for Terraform provider v1.285.0 (found by comparing each type's Terraform schema with the
// properties the SDK sends). The SDK keeps db_instance's serverless_config a list (serverlessConfigs)
// although Terraform declares MaxItems: 1, which the bridge would otherwise flatten to one object.
var fields = map[string]map[string]*tfbridge.SchemaInfo{
	"alicloud_db_instance": {"serverless_config": {MaxItemsOne: tfbridge.False()}},
}

// dataSources maps Terraform data sources to the SDK's invoke tokens (alicloud:<module>/<fn>:<fn>).
// The program calls none yet.
var dataSources = map[string][2]string{}

// schema is what GetSchema answers. The engine does not need the package schema for preview/up, so
// we do not run tfgen at build time; SDK generation is not this binary's job.
const pulumiSchema = `{"name":"alicloud"}`

func providerInfo() tfbridge.ProviderInfo {
	p := shimv1.NewProvider(alicloud.Provider().(*schema.Provider))
	prov := tfbridge.ProviderInfo{
		P:         p,
		Name:      "alicloud",
		Version:   version,
		GitHubOrg: "aliyun",
		Config: map[string]*tfbridge.SchemaInfo{
			"region":        {Default: &tfbridge.DefaultInfo{EnvVars: []string{"ALICLOUD_REGION"}}},
			"profile":       {Default: &tfbridge.DefaultInfo{EnvVars: []string{"ALICLOUD_PROFILE"}}},
			"ecs_role_name": {Default: &tfbridge.DefaultInfo{EnvVars: []string{"ALICLOUD_ECS_ROLE_NAME"}}},
		},
		Resources:   map[string]*tfbridge.ResourceInfo{},
		DataSources: map[string]*tfbridge.DataSourceInfo{},
		// Every other Terraform type of the provider stays unmapped (not served) on purpose.
		IgnoreMappings: unmapped(p),
	}
	for tf, t := range resources {
		prov.Resources[tf] = &tfbridge.ResourceInfo{Tok: tfbridge.MakeResource("alicloud", t[0], t[1]), Fields: fields[tf]}
	}
	for tf, t := range dataSources {
		prov.DataSources[tf] = &tfbridge.DataSourceInfo{Tok: tfbridge.MakeDataSource("alicloud", t[0], t[1])}
	}
	autoname(&prov)
	return prov
}

// unmapped lists the provider's other Terraform types so that the bridge serves no token for them
// (otherwise it would make up tokens of its own naming scheme that no SDK of ours sends).
func unmapped(p shim.Provider) []string {
	var names []string
	p.ResourcesMap().Range(func(name string, _ shim.Resource) bool {
		if _, ok := resources[name]; !ok {
			names = append(names, name)
		}
		return true
	})
	p.DataSourcesMap().Range(func(name string, _ shim.Resource) bool {
		if _, ok := dataSources[name]; !ok {
			names = append(names, name)
		}
		return true
	})
	return names
}

// autoname gives a string `name` input an auto-name (logical name plus random suffix) when the program sets
// none, as pulumi-alicloud's SetAutonaming(255, "-") does, but skips deprecated `name` fields: v1.285.0
// still has them on types whose SDK 4.0.0 no longer has a `name` property (vpc, vswitch, ram_role, ...),
// so upstream's newer provider does not auto-name those.
func autoname(prov *tfbridge.ProviderInfo) {
	for tf, r := range prov.Resources {
		res := prov.P.ResourcesMap().Get(tf)
		if res == nil {
			continue
		}
		s, ok := res.Schema().GetOk("name")
		if !ok || !(s.Optional() || s.Required()) || s.Type() != shim.TypeString || s.Deprecated() != "" {
			continue
		}
		if r.Fields == nil {
			r.Fields = map[string]*tfbridge.SchemaInfo{}
		}
		if _, set := r.Fields["name"]; !set {
			r.Fields["name"] = tfbridge.AutoName("name", 255, "-")
		}
	}
}

func main() {
	tfbridge.Main("alicloud", version, providerInfo(), []byte(pulumiSchema))
}

// pulumi-resource-random for ha-webapp: the Terraform random provider (plugin framework) served by the
// Go proxy, bridged with pulumi-terraform-bridge's pf/tfbridge.Main. Tokens follow pulumi-random's
// scheme: random_password -> random:index/randomPassword:RandomPassword.
package main

import (
	"context"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/terraform-providers/terraform-provider-random/shim"
)

// version is set by build.sh (-ldflags "-X main.version=..."): the plugin version the SDK asks for plus
// build metadata naming the bridged Terraform provider commit.
var version = "4.21.4"

// schema is what GetSchema answers; the engine does not need the package schema for preview/up.
const pulumiSchema = `{"name":"random"}`

func main() {
	prov := tfbridge.ProviderInfo{
		P:       pftfbridge.ShimProvider(shim.NewProvider()),
		Name:    "random",
		Version: version,
		// The plugin-framework bridge requires bridge metadata; ours starts empty (we keep no history of
		// earlier schemas to alias, unlike pulumi-random's committed bridge-metadata.json).
		MetadataInfo: tfbridge.NewProviderMetadata([]byte("{}")),
	}
	prov.MustComputeTokens(tokens.SingleModule("random_", "index", func(module, name string) (string, error) {
		return tokens.MakeStandard("random")(module, "Random"+name)
	}))
	pftfbridge.Main(context.Background(), "random", prov, pftfbridge.ProviderMetadata{PackageSchema: []byte(pulumiSchema)})
}

// Wrapper module for the protocol adapter installed as pulumi-language-python in front of the STOPGAP host
// (../pyhost, README.md). It decodes RunPlugin requests with the pulumirpc types of our pulumi pin.
// DELETE with ../pyhost once the host of the pin is buildable.
module ha-webapp.local/toolchain/pyhost-adapter

go 1.26.6

require (
	github.com/pulumi/pulumi/sdk/v3 v3.260.0
	google.golang.org/grpc v1.82.1
	google.golang.org/protobuf v1.36.11
)

require (
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.40.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260414002931-afd174a4e478 // indirect
)

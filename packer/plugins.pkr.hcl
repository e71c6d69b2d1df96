# The alicloud-ecs builder as a plugin, for Packer 1.7+ (`packer init packer/` installs it). Kept apart from the
# template on purpose: Debian's Packer 1.6.6, which the tests validate the template with, has the builder built in and
# does not know `required_plugins`, so the tests validate every file but this one. Pinned: a plugin upgrade changes how
# images are built, so it arrives as a reviewed change to this line.
packer {
  required_plugins {
    alicloud = {
      source  = "github.com/hashicorp/alicloud"
      version = "= 1.1.2"
    }
  }
}

# The application image: Ubuntu LTS + OS updates + the runtime + the artifact + a systemd unit, and nothing else.
# Built once per commit on master; promoted to preprod and prod unchanged by its ID (docs/images.md).
# Run from the repository root: `packer init packer/` then `packer build -var app_artifact=… -var app_version=…
# -var git_commit=… packer/`.

locals {
  built_at     = timestamp()
  short_commit = substr(var.git_commit, 0, 12)
  # ECS image names: 2-128 characters, letters, digits, ".", "_", "-" and ":". The build time keeps a re-run of the
  # same commit from colliding with the image of the first run.
  image_name = "ha-webapp-${var.app_version}-${local.short_commit}-${formatdate("YYYYMMDDhhmmss", local.built_at)}"
}

source "alicloud-ecs" "app" {
  region            = var.region
  source_image      = var.source_image
  instance_type     = var.build_instance_type
  image_name        = local.image_name
  image_description = "ha-webapp ${var.app_version} (commit ${var.git_commit}), built ${local.built_at}"

  # The build server needs the internet for packages and Packer's SSH; it exists only for the build. Packer creates
  # and deletes a temporary VPC, security group and key pair for it.
  associate_public_ip_address = true
  internet_charge_type        = "PayByTraffic"
  internet_max_bandwidth_out  = 10
  ssh_username                = "root"

  tags = {
    project      = "ha-webapp"
    app_version  = var.app_version
    git_commit   = var.git_commit
    built_at     = local.built_at
    source_image = var.source_image
  }
}

build {
  sources = ["source.alicloud-ecs.app"]

  provisioner "file" {
    source      = var.app_artifact
    destination = "/tmp/app-artifact"
  }

  # Everything provision.sh installs besides the artifact: the unit and the boot helper with its pinned libraries.
  provisioner "file" {
    source      = "${path.root}/files/"
    destination = "/tmp/image-files"
  }

  provisioner "file" {
    source      = "${path.root}/scripts/app-unit-dropin.sh"
    destination = "/tmp/app-unit-dropin.sh"
  }

  provisioner "shell" {
    script = "${path.root}/scripts/provision.sh"
    environment_vars = [
      "RUNTIME_PACKAGES=${join(" ", var.runtime_packages)}",
      "APP_FILE_NAME=${var.app_file_name}",
      "APP_START_COMMAND=${var.start_command}",
      "APP_MIGRATE_COMMAND=${var.migrate_command}",
      "APP_PORT=${var.app_port}",
    ]
  }

  post-processor "manifest" {
    # Read by `python -m pipeline.image_handoff set|publish`; several runs append to it, the last one is last_run_uuid.
    output     = "${path.root}/manifest.json"
    strip_path = true
    custom_data = {
      app_version = var.app_version
      git_commit  = var.git_commit
    }
  }
}

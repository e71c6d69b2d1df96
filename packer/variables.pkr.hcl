# What one image build takes. The pipeline passes app_artifact, app_version and git_commit, and the app's runtime
# (app_file_name, runtime_packages, start_command, migrate_command) from the app pin, app.yaml, through
# `python -m pipeline.app_pin packer-vars`; the defaults run the example app of app/ (docs/app.md).
# Nothing here is per environment: the same image runs in dev, preprod and prod, which hand it their settings at boot
# (/etc/app/app.env, written from the user data). Credentials come from the environment (ALICLOUD_ACCESS_KEY,
# ALICLOUD_SECRET_KEY, SECURITY_TOKEN), never from the template.

variable "region" {
  type        = string
  description = "Region the image is built in and registered in, e.g. cn-hangzhou (the stacks' alicloud:region)."
  default     = "cn-hangzhou"
}

variable "source_image" {
  type        = string
  description = "The Ubuntu 24.04 LTS x64 public image to start from (its ID is its name)."
  # Pinned like every other dependency, and bumped on purpose; the build still applies every OS update (see
  # scripts/provision.sh). The newest: `aliyun ecs DescribeImageFromFamily --RegionId cn-hangzhou
  # --ImageFamily acs:ubuntu_24_04_x64`. Packer 1.6.6, which the tests run, knows neither `image_family` nor data
  # sources, so the family cannot be resolved here.
  default = "ubuntu_24_04_x64_20G_alibase_20251126.vhd"
  validation {
    # substr rather than regex: Packer 1.6.6 has no regexall and its can(regex(...)) never succeeds.
    condition     = substr(var.source_image, 0, 17) == "ubuntu_24_04_x64_"
    error_message = "The source_image must be an Ubuntu 24.04 LTS x64 public image, named ubuntu_24_04_x64_…."
  }
}

variable "build_instance_type" {
  type        = string
  description = "Instance type of the temporary build server (not of the app servers, which each stack chooses)."
  default     = "ecs.g7.large"
}

variable "app_artifact" {
  type        = string
  description = "Path of the application artifact to bake in: app:build's binary, or a downloaded jar."
}

variable "app_file_name" {
  type        = string
  description = "File name the artifact gets under /opt/app (the start and migrate commands refer to it)."
  default     = "app"
}

variable "app_version" {
  type        = string
  description = "Application version, e.g. 1.4.2: in the image name, its tags and the manifest."
  validation {
    condition     = length(var.app_version) > 0 && length(var.app_version) <= 40
    error_message = "The app_version must be 1 to 40 characters."
  }
}

variable "git_commit" {
  type        = string
  description = "Full git commit SHA the artifact was built from: in the image name (first 12), tags and manifest."
  validation {
    condition     = length(var.git_commit) == 40
    error_message = "The git_commit must be a full 40-character commit SHA."
  }
}

variable "runtime_packages" {
  type        = list(string)
  description = "Debian packages the application needs at run time (at least one: provision.sh installs them)."
  # The example app is one static Go binary: it needs no runtime, only the CA roots for any HTTPS it calls. The
  # tutorial's Spring Boot jar would take openjdk-17-jre-headless (docs/app.md).
  default = ["ca-certificates"]
  validation {
    condition     = length(var.runtime_packages) > 0
    error_message = "The runtime_packages must name at least one Debian package."
  }
}

variable "start_command" {
  type        = string
  description = "systemd ExecStart of app.service; $${VAR} expands from /etc/app/app.env (APP_PORT, DB_HOST, …)."
  # The example app reads APP_PORT and the database settings from its environment itself.
  default = "/opt/app/app serve"
}

variable "migrate_command" {
  type        = string
  description = "Schema migration, run by /usr/local/bin/app-migrate as the app user with bash -c and the app's settings."
  default     = "/opt/app/app migrate"
  validation {
    condition     = length(var.migrate_command) > 0
    error_message = "The migrate_command must not be empty."
  }
}

variable "app_port" {
  type        = number
  description = "Port the app serves on (and answers GET /health) when the boot settings do not set APP_PORT."
  default     = 8080
}

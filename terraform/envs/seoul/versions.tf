terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # State lives in Seoul's own bucket; the Singapore root has its own, so a
  # Seoul outage never blocks a DR apply. Configure with
  # `terraform init -backend-config=backend.hcl` (see backend.hcl.example).
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      "twinkle.dev/estate" = var.name
      "twinkle.dev/role"   = "primary"
    })
  }
}

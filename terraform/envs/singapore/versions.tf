terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # State lives in Singapore's own bucket, never in Seoul: a DR apply (building the
  # standby EKS) must work while Seoul is down. Configure with
  # `terraform init -backend-config=backend.hcl` (see backend.hcl.example).
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      "twinkle.dev/estate" = var.name
      "twinkle.dev/role"   = "dr"
    })
  }
}

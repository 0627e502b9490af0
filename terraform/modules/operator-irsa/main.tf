# The operator's AWS role on EKS (IRSA): assumable only by the operator's
# ServiceAccount through the cluster's OIDC provider, allowed only the
# Route53 calls of a DR weight writer on the one hosted zone (../dr-access).
# The chart takes its ARN as serviceAccount.irsaRoleArn.

locals {
  issuer = trimprefix(var.oidc_issuer, "https://")
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.role_name
  description          = "Twinkle operator (${var.namespace}/${var.service_account}): Route53 DR weights on ${var.hosted_zone_id}"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 3600
  tags                 = var.tags
}

module "access" {
  source            = "../dr-access"
  hosted_zone_id    = var.hosted_zone_id
  record_name       = var.record_name
  lease_record_name = var.lease_record_name
  health_check_ids  = var.health_check_ids
}

resource "aws_iam_role_policy" "route53" {
  name   = "route53-dr-weights"
  role   = aws_iam_role.this.id
  policy = module.access.policy_json
}

# The Route53 permissions of whoever writes the DR weights: the operator
# (IRSA) and the standalone watchdog (ECS task role). Exactly what
# watchdog/src/route53.rs, lease.rs and probe.rs call, on the one hosted
# zone, and only for the weighted record name and its lease TXT record:
#
#   ListResourceRecordSets    read the weights and the lease
#   ChangeResourceRecordSets  UPSERT the weights; DELETE+CREATE the lease TXT
#   GetChange                 wait for INSYNC
#   GetHealthCheckStatus      the optional second health signal

data "aws_partition" "current" {}

locals {
  arn_prefix = "arn:${data.aws_partition.current.partition}:route53:::"
  # Route53 compares normalised names: lower case, no trailing dot.
  record_name = lower(trimsuffix(var.record_name, "."))
  lease_name  = var.lease_record_name != "" ? lower(trimsuffix(var.lease_record_name, ".")) : "_twinkle-dr-lease.${local.record_name}"
  health_check_arns = length(var.health_check_ids) > 0 ? [
    for id in var.health_check_ids : "${local.arn_prefix}healthcheck/${id}"
  ] : ["${local.arn_prefix}healthcheck/*"]
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ReadTheZone"
    actions   = ["route53:ListResourceRecordSets"]
    resources = ["${local.arn_prefix}hostedzone/${var.hosted_zone_id}"]
  }

  statement {
    sid       = "WriteOnlyTheWeightedRecordsAndTheLease"
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = ["${local.arn_prefix}hostedzone/${var.hosted_zone_id}"]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values   = [local.record_name, local.lease_name]
    }

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsRecordTypes"
      values   = ["A", "CNAME", "TXT"]
    }

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsActions"
      values   = ["UPSERT", "CREATE", "DELETE"]
    }
  }

  statement {
    sid       = "WaitForInsync"
    actions   = ["route53:GetChange"]
    resources = ["${local.arn_prefix}change/*"]
  }

  statement {
    sid       = "ReadHealthCheckStatus"
    actions   = ["route53:GetHealthCheckStatus"]
    resources = local.health_check_arns
  }
}

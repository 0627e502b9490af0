output "policy_json" {
  description = "IAM policy document (JSON) with the Route53 permissions of a DR weight writer."
  value       = data.aws_iam_policy_document.this.json
}

output "lease_record_name" {
  description = "The lease TXT record name the policy allows (normalised)."
  value       = local.lease_name
}

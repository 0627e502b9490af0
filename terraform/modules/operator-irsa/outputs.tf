output "role_arn" {
  description = "ARN of the operator's IRSA role (chart value serviceAccount.irsaRoleArn)."
  value       = aws_iam_role.this.arn
}

output "alb_dns_name" {
  description = "DNS name of the ALB: the dr-ecs weighted record points here."
  value       = aws_lb.this.dns_name
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "token_secret_arn" {
  description = "Secrets Manager secret with the token signing key (copy it to the EKS clusters' twinkle-token Secrets so tickets stay valid across a failover)."
  value       = aws_secretsmanager_secret.token.arn
}

output "watchdog_role_arn" {
  description = "IAM role of the watchdog tasks."
  value       = aws_iam_role.watchdog.arn
}

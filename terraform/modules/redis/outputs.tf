output "primary_endpoint" {
  description = "Host name of the primary (TLS, port 6379)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "reader_endpoint" {
  description = "Host name spreading reads over the replicas."
  value       = aws_elasticache_replication_group.this.reader_endpoint_address
}

output "auth_secret_arn" {
  description = "Secrets Manager secret holding the AUTH token."
  value       = aws_secretsmanager_secret.auth.arn
}

output "url_secret_arn" {
  description = "Secrets Manager secret holding the rediss:// URL the workloads use (TWINKLE_REDIS)."
  value       = aws_secretsmanager_secret.url.arn
}

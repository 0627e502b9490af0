output "bootstrap_servers" {
  description = "Bootstrap servers for TicketEvent spec.kafka (SASL/SCRAM over TLS on MSK; as given when self-managed)."
  value       = var.mode == "msk" ? aws_msk_cluster.this[0].bootstrap_brokers_sasl_scram : var.self_managed_bootstrap
}

output "scram_secret_arn" {
  description = "Secrets Manager secret with the SASL/SCRAM user (MSK only; empty when self-managed)."
  value       = var.mode == "msk" ? aws_secretsmanager_secret.scram[0].arn : ""
}

output "cluster_arn" {
  description = "ARN of the MSK cluster (empty when self-managed)."
  value       = var.mode == "msk" ? aws_msk_cluster.this[0].arn : ""
}

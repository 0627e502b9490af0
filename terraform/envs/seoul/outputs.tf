output "cluster_name" {
  description = "Primary EKS cluster (aws eks update-kubeconfig --name …)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint of the primary cluster."
  value       = module.eks.cluster_endpoint
}

output "operator_role_arn" {
  description = "The operator's IRSA role: chart value serviceAccount.irsaRoleArn."
  value       = module.operator_irsa.role_arn
}

output "kafka_bootstrap_servers" {
  description = "TicketEvent spec.kafka.bootstrapServers (or the value of its bootstrapSecretRef Secret)."
  value       = module.kafka.bootstrap_servers
}

output "kafka_scram_secret_arn" {
  description = "SASL/SCRAM credentials of the MSK cluster."
  value       = module.kafka.scram_secret_arn
}

output "redis_primary_endpoint" {
  description = "Redis primary endpoint (TLS, AUTH)."
  value       = module.redis.primary_endpoint
}

output "redis_url_secret_arn" {
  description = "Secrets Manager secret with the rediss:// URL: sync it into the Secret named by TicketEvent spec.redis.secretRef."
  value       = module.redis.url_secret_arn
}

output "helm_values" {
  description = "Values for charts/twinkle-operator that come from this estate."
  value = {
    serviceAccount = {
      name        = var.operator_service_account
      irsaRoleArn = module.operator_irsa.role_arn
    }
    networkPolicy = {
      egress = {
        apiServerCidrs = ["0.0.0.0/0"]
        kafkaCidrs     = [var.vpc_cidr]
      }
    }
  }
}

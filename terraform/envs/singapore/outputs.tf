output "ticket_event_dr" {
  description = "TicketEvent spec.dr for these records: hostedZoneId, recordName, ttl and the three targets' endpoint and healthUrl (add mode, failbackPolicy, probe as wanted)."
  value       = module.dns.ticket_event_dr
}

output "ticket_event_dr_yaml" {
  description = "The same spec.dr section as YAML, to paste under spec.dr of the TicketEvent."
  value       = yamlencode(module.dns.ticket_event_dr)
}

output "watchdog_config_yaml" {
  description = "dr.yaml of `twinkle-operator dr watch|status|failover -c` for these records (the ECS watchdog runs with it)."
  value       = module.dns.watchdog_config_yaml
}

output "set_identifiers" {
  description = "Set identifier of each weighted record (primary, dr-eks, dr-ecs)."
  value       = module.dns.set_identifiers
}

output "health_check_ids" {
  description = "Route53 health check per set identifier (Seoul variable route53_health_check_ids)."
  value       = module.dns.health_check_ids
}

output "dr_ecs_alb_dns_name" {
  description = "DNS name of the DR ECS load balancer."
  value       = module.ecs.alb_dns_name
}

output "token_secret_arn" {
  description = "Token signing key of the DR workloads: the same value must be in the EKS clusters' twinkle-token Secrets."
  value       = module.ecs.token_secret_arn
}

output "kafka_bootstrap_servers" {
  description = "Kafka bootstrap servers in Singapore."
  value       = module.kafka.bootstrap_servers
}

output "redis_url_secret_arn" {
  description = "Secrets Manager secret with the Singapore rediss:// URL."
  value       = module.redis.url_secret_arn
}

output "standby_cluster_name" {
  description = "Standby EKS cluster name (null until build_standby_eks = true)."
  value       = var.build_standby_eks ? module.eks_standby[0].cluster_name : null
}

output "standby_operator_role_arn" {
  description = "The operator's IRSA role on the standby cluster (null until built)."
  value       = var.build_standby_eks ? module.operator_irsa_standby[0].role_arn : null
}

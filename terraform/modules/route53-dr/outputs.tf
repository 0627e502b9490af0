output "record_name" {
  description = "The weighted record name (normalised)."
  value       = local.record_name
}

output "record_type" {
  description = "A or CNAME."
  value       = local.record_type
}

output "set_identifiers" {
  description = "Set identifier of each target's weighted record."
  value       = { for key, record in local.records : key => record.set_identifier }
}

output "health_check_ids" {
  description = "Route53 health check of each target, by set identifier."
  value       = { for id, hc in aws_route53_health_check.this : id => hc.id }
}

output "ticket_event_dr" {
  description = "The TicketEvent spec.dr section for these records (hostedZoneId, recordName, ttl, targets)."
  value       = local.ticket_event_dr
}

output "watchdog_config" {
  description = "The DR watchdog's config (dr.yaml for `twinkle-operator dr watch -c`) as an object; yamlencode it."
  value       = local.watchdog_config
}

output "watchdog_config_yaml" {
  description = "The same watchdog config as YAML."
  value       = yamlencode(local.watchdog_config)
}

# The Route53 weighted records in front of the three DR targets (SPEC §4),
# each with a Route53 health check, created at 100/0/0 (everything to the
# primary). The set identifiers are the ones the operator plans
# (operator/src/plan/mod.rs: "primary", "dr-eks", "dr-ecs") and the ones the
# watchdog config rendered below names, so the watchdog UPSERTs exactly these
# records.
#
# From then on the weights belong to the DR watchdog (it moves them during a
# failover, inside a fenced change batch): Terraform ignores changes to them,
# so an apply in the middle of an incident never routes customers back to a
# dead region. The watchdog's TXT lease record (_twinkle-dr-lease.<record>)
# is created and replaced by the watchdog itself and is not managed here.

data "aws_route53_zone" "this" {
  zone_id = var.hosted_zone_id
}

locals {
  record_name = lower(trimsuffix(var.record_name, "."))
  zone_name   = lower(trimsuffix(data.aws_route53_zone.this.name, "."))
  ipv4        = "^([0-9]{1,3}\\.){3}[0-9]{1,3}$"
  # A records for IPv4 endpoints, CNAME for host names (as the operator plans).
  record_type = can(regex(local.ipv4, var.targets.primary.endpoint)) ? "A" : "CNAME"

  # "https://host[:port]/path" → the health check's protocol, host, port, path.
  health = {
    for id, target in {
      primary = var.targets.primary
      dr-eks  = var.targets.dr_eks
      dr-ecs  = var.targets.dr_ecs
      } : id => {
      url    = target.health_url
      scheme = upper(regex("^(https?)://", target.health_url)[0])
      host   = regex("^https?://([^/:?#]+)", target.health_url)[0]
      port = try(
        tonumber(regex("^https?://[^/:?#]+:([0-9]+)", target.health_url)[0]),
        startswith(target.health_url, "https") ? 443 : 80,
      )
      path = try(regex("^https?://[^/?#]+(/[^#]*)", target.health_url)[0], "/")
    }
  }
}

resource "aws_route53_health_check" "this" {
  for_each          = local.health
  type              = each.value.scheme
  fqdn              = each.value.host
  port              = each.value.port
  resource_path     = each.value.path
  enable_sni        = each.value.scheme == "HTTPS"
  request_interval  = 10
  failure_threshold = var.health_check_failure_threshold
  measure_latency   = true
  regions           = var.health_check_regions
  tags              = merge(var.tags, { Name = "${local.record_name} ${each.key}" })
}

resource "aws_route53_record" "primary" {
  zone_id         = var.hosted_zone_id
  name            = local.record_name
  type            = local.record_type
  ttl             = var.ttl
  set_identifier  = "primary"
  records         = [var.targets.primary.endpoint]
  health_check_id = aws_route53_health_check.this["primary"].id

  weighted_routing_policy {
    weight = 100
  }

  lifecycle {
    # The DR watchdog owns the weights after creation.
    ignore_changes = [weighted_routing_policy]

    precondition {
      condition     = local.record_name == local.zone_name || endswith(local.record_name, ".${local.zone_name}")
      error_message = "record_name must be inside the hosted zone ${local.zone_name}."
    }
    precondition {
      condition = alltrue([
        for t in [var.targets.primary, var.targets.dr_eks, var.targets.dr_ecs] :
        can(regex(local.ipv4, t.endpoint)) == (local.record_type == "A")
      ])
      error_message = "All three endpoints must be IPv4 addresses (A records) or all host names (CNAME records): the watchdog writes one record type."
    }
  }
}

resource "aws_route53_record" "dr_eks" {
  zone_id         = var.hosted_zone_id
  name            = local.record_name
  type            = local.record_type
  ttl             = var.ttl
  set_identifier  = "dr-eks"
  records         = [var.targets.dr_eks.endpoint]
  health_check_id = aws_route53_health_check.this["dr-eks"].id

  weighted_routing_policy {
    weight = 0
  }

  lifecycle {
    ignore_changes = [weighted_routing_policy]
  }
}

resource "aws_route53_record" "dr_ecs" {
  zone_id         = var.hosted_zone_id
  name            = local.record_name
  type            = local.record_type
  ttl             = var.ttl
  set_identifier  = "dr-ecs"
  records         = [var.targets.dr_ecs.endpoint]
  health_check_id = aws_route53_health_check.this["dr-ecs"].id

  weighted_routing_policy {
    weight = 0
  }

  lifecycle {
    ignore_changes = [weighted_routing_policy]
  }
}

locals {
  records = {
    primary = aws_route53_record.primary
    drEks   = aws_route53_record.dr_eks
    drEcs   = aws_route53_record.dr_ecs
  }
  health_urls = {
    primary = var.targets.primary.health_url
    drEks   = var.targets.dr_eks.health_url
    drEcs   = var.targets.dr_ecs.health_url
  }

  # The DR watchdog's dr.yaml (watchdog/src/config.rs), naming the records
  # above by their set identifiers and keeping their health checks attached
  # (the watchdog UPSERTs whole record sets).
  watchdog_config = {
    route53 = {
      hostedZoneId = var.hosted_zone_id
      recordName   = local.record_name
      recordType   = local.record_type
      ttl          = var.ttl
    }
    targets = {
      for key, record in local.records : key => {
        setIdentifier = record.set_identifier
        values        = tolist(record.records)
        healthUrl     = local.health_urls[key]
        healthCheckId = record.health_check_id
      }
    }
    probe = {
      intervalMs          = var.watchdog_probe_interval_ms
      timeoutMs           = var.watchdog_probe_timeout_ms
      route53HealthChecks = true
    }
  }

  # TicketEvent spec.dr (crd/src/dr.rs) for the same records.
  ticket_event_dr = {
    hostedZoneId = var.hosted_zone_id
    recordName   = local.record_name
    ttl          = var.ttl
    targets = {
      for key, record in local.records : key => {
        endpoint  = one(record.records)
        healthUrl = local.health_urls[key]
      }
    }
  }
}

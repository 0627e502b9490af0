variable "hosted_zone_id" {
  description = "Existing Route53 hosted zone (Z…, without /hostedzone/) that holds record_name."
  type        = string

  validation {
    condition     = can(regex("^[A-Z0-9]{1,32}$", var.hosted_zone_id))
    error_message = "hosted_zone_id is the bare zone id, e.g. Z0123456789ABCDEFGHIJ."
  }
}

variable "record_name" {
  description = "The name customers use (e.g. tickets.example.com); all three weighted records share it."
  type        = string
}

variable "ttl" {
  description = "TTL of the weighted records in seconds: how long resolvers keep a target after its weight drops. Keep it short."
  type        = number
  default     = 60

  validation {
    condition     = var.ttl >= 1 && var.ttl <= 86400
    error_message = "ttl must be 1-86400 seconds."
  }
}

variable "targets" {
  description = "The three DR targets: what each weighted record points at (a host name, or an IPv4 address for A records) and the URL that reports its health (probed by Route53 and by the watchdog)."
  type = object({
    primary = object({ endpoint = string, health_url = string })
    dr_eks  = object({ endpoint = string, health_url = string })
    dr_ecs  = object({ endpoint = string, health_url = string })
  })

  validation {
    condition = alltrue([
      for t in [var.targets.primary, var.targets.dr_eks, var.targets.dr_ecs] :
      can(regex("^https?://[^/?#\\s]+", t.health_url)) && length(t.endpoint) > 0
    ])
    error_message = "Every target needs an endpoint and an http(s) health_url."
  }
}

variable "health_check_failure_threshold" {
  description = "Consecutive failed Route53 checks (10 s apart) before a target is unhealthy."
  type        = number
  default     = 3
}

variable "health_check_regions" {
  description = "Route53 checker regions (at least three); null uses Route53's default set."
  type        = list(string)
  default     = ["ap-northeast-1", "ap-southeast-1", "us-west-2"]
}

variable "watchdog_probe_interval_ms" {
  description = "Probe interval written into the rendered watchdog config."
  type        = number
  default     = 5000
}

variable "watchdog_probe_timeout_ms" {
  description = "Probe timeout written into the rendered watchdog config (shorter than the interval)."
  type        = number
  default     = 2000
}

variable "tags" {
  description = "Tags of the health checks."
  type        = map(string)
  default     = {}
}

variable "hosted_zone_id" {
  description = "Route53 hosted zone holding the weighted records (Z…, without /hostedzone/)."
  type        = string

  validation {
    condition     = can(regex("^[A-Z0-9]{1,32}$", var.hosted_zone_id))
    error_message = "hosted_zone_id is the bare zone id, e.g. Z0123456789ABCDEFGHIJ."
  }
}

variable "record_name" {
  description = "The weighted record name customers use (e.g. tickets.example.com)."
  type        = string
}

variable "lease_record_name" {
  description = "The watchdog's TXT lease record; empty means its default, _twinkle-dr-lease.<record_name>."
  type        = string
  default     = ""
}

variable "health_check_ids" {
  description = "Health checks whose status may be read; empty allows any health check of the account (read-only)."
  type        = list(string)
  default     = []
}

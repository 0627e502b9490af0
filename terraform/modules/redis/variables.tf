variable "name" {
  description = "Replication group id and prefix of its secrets."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the replication group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets in two or more zones (the primary and replicas are spread over them)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Multi-AZ needs subnets in at least two zones."
  }
}

variable "allowed_cidrs" {
  description = "CIDRs allowed to connect (the workload subnets)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest, the secrets and the slow-log group."
  type        = string
}

variable "engine_version" {
  description = "Redis OSS engine version."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "replicas" {
  description = "Read replicas besides the primary (at least 1 for Multi-AZ failover)."
  type        = number
  default     = 2

  validation {
    condition     = var.replicas >= 1 && var.replicas <= 5
    error_message = "replicas must be 1-5: Multi-AZ automatic failover needs a replica."
  }
}

variable "snapshot_retention_days" {
  description = "Days of daily snapshots to keep."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Days to keep the slow log."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}

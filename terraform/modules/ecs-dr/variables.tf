variable "name" {
  description = "Name of the ECS cluster and prefix of its resources."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the tasks and the ALB."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (Redis and Kafka are reached inside it)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (two or more zones) of the internet-facing ALB."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets (two or more zones) of the Fargate tasks."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key ARN for log groups and secrets."
  type        = string
}

variable "kms_key_id" {
  description = "The same KMS key's id, for Fargate ephemeral storage."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate (in this region) for the ALB's HTTPS listener, valid for the customer record name."
  type        = string
}

variable "workload_image" {
  description = "The twinkle workloads image (workloads/Dockerfile), ideally by digest."
  type        = string
}

variable "operator_image" {
  description = "The twinkle-operator image (operator/Dockerfile) the watchdog runs, ideally by digest."
  type        = string
}

variable "config_init_image" {
  description = "Small image with a POSIX shell for the per-task config container."
  type        = string
  default     = "public.ecr.aws/docker/library/busybox:1.37"
}

variable "event_manifest" {
  description = "The TicketEvent manifest (YAML) or event config (JSON) the DR workloads serve (`twinkle queue-api --event` accepts both)."
  type        = string
}

variable "topic_prefix" {
  description = "Kafka topic and consumer-group prefix of the event (TWINKLE_TOPIC_PREFIX): the operator's naming is <namespace>.<event>."
  type        = string
}

variable "kafka_bootstrap" {
  description = "Kafka bootstrap servers of this region."
  type        = string
}

variable "redis_url_secret_arn" {
  description = "Secrets Manager secret with the rediss:// URL (module redis output url_secret_arn)."
  type        = string
}

variable "watchdog_enabled" {
  description = "Run the standalone DR watchdog service here (one task)."
  type        = bool
  default     = true
}

variable "watchdog_config_yaml" {
  description = "The watchdog's dr.yaml (module route53-dr output watchdog_config_yaml)."
  type        = string
}

variable "watchdog_route53_policy_json" {
  description = "IAM policy of the watchdog task role (module dr-access output policy_json)."
  type        = string
}

variable "queue_api_count" {
  description = "queue-api tasks kept running (warm standby) and their autoscaling minimum."
  type        = number
  default     = 2
}

variable "booking_api_count" {
  description = "booking-api tasks kept running and their autoscaling minimum."
  type        = number
  default     = 2
}

variable "api_max_count" {
  description = "Autoscaling maximum of each API service during a failover."
  type        = number
  default     = 40
}

variable "consumer_count" {
  description = "Tasks of each consumer (queue-consumer, booking-consumer); more than the topic's partitions idle."
  type        = number
  default     = 2
}

variable "task_cpu" {
  description = "CPU units of a workload task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "task_memory" {
  description = "Memory of a workload task in MiB."
  type        = number
  default     = 2048
}

variable "waf_rate_limit_per_5min" {
  description = "Requests per client address per five minutes before the WAF blocks it."
  type        = number
  default     = 30000
}

variable "waf_block_anonymous_ips" {
  description = "Block requests from anonymising proxies, VPNs and Tor (AWS Anonymous IP list); false only counts them."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the ALB from deletion."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days to keep task, WAF and ALB logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}

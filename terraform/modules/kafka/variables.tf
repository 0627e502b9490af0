variable "name" {
  description = "Name of the MSK cluster and prefix of its resources."
  type        = string
}

variable "mode" {
  description = "\"msk\" creates an Amazon MSK cluster; \"self-managed\" creates nothing and passes self_managed_bootstrap through (Kafka on EKS, e.g. Strimzi)."
  type        = string
  default     = "msk"

  validation {
    condition     = contains(["msk", "self-managed"], var.mode)
    error_message = "mode must be \"msk\" or \"self-managed\"."
  }
}

variable "self_managed_bootstrap" {
  description = "Bootstrap servers of the self-managed Kafka (mode = \"self-managed\"), e.g. twinkle-kafka-bootstrap.kafka.svc:9093."
  type        = string
  default     = ""
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per zone; brokers are spread over them."
  type        = list(string)
}

variable "allowed_cidrs" {
  description = "CIDRs allowed to reach the brokers (the workload subnets)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest, the SCRAM secret and the broker log group."
  type        = string
}

variable "kafka_version" {
  description = "Apache Kafka version of the MSK cluster."
  type        = string
  default     = "3.8.x"
}

variable "broker_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "brokers_per_zone" {
  description = "Brokers in each subnet's zone."
  type        = number
  default     = 1
}

variable "broker_volume_gib" {
  description = "EBS volume of each broker in GiB."
  type        = number
  default     = 500
}

variable "log_retention_days" {
  description = "Days to keep broker logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}

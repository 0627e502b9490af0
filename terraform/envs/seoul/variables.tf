variable "name" {
  description = "Name of this estate in Seoul: prefix of the VPC, cluster, caches and roles."
  type        = string
  default     = "twinkle-seoul"
}

variable "region" {
  description = "AWS region of the primary (Seoul)."
  type        = string
  default     = "ap-northeast-2"
}

variable "azs" {
  description = "Availability zones to spread subnets, nodes, Redis and Kafka over (two or more)."
  type        = list(string)
  default     = ["ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c"]
}

variable "vpc_cidr" {
  description = "CIDR of the Seoul VPC (/16; must not overlap Singapore's if the VPCs are ever peered)."
  type        = string
  default     = "10.10.0.0/16"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (the operator supports 1.33-1.37)."
  type        = string
  default     = "1.33"
}

variable "eks_api_allowed_cidrs" {
  description = "Extra CIDRs (VPN, CI runners) allowed on the private API endpoint besides the VPC."
  type        = list(string)
  default     = []
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed on the public API endpoint; empty keeps the endpoint private only."
  type        = list(string)
  default     = []
}

variable "eks_admin_principal_arns" {
  description = "IAM principals given cluster-admin through EKS access entries."
  type        = list(string)
  default     = []
}

variable "eks_node_instance_types" {
  description = "Instance types of the primary node group."
  type        = list(string)
  default     = ["c7i.2xlarge"]
}

variable "eks_node_min_size" {
  description = "Minimum (and initial) nodes of the primary node group."
  type        = number
  default     = 3
}

variable "eks_node_max_size" {
  description = "Maximum nodes of the primary node group (the 10:00 rush)."
  type        = number
  default     = 30
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_replicas" {
  description = "Redis replicas besides the primary (Multi-AZ)."
  type        = number
  default     = 2
}

variable "kafka_mode" {
  description = "\"msk\" (Amazon MSK) or \"self-managed\" (Kafka on this EKS cluster, installed outside Terraform)."
  type        = string
  default     = "msk"
}

variable "kafka_self_managed_bootstrap" {
  description = "Bootstrap servers of the self-managed Kafka when kafka_mode = \"self-managed\"."
  type        = string
  default     = ""
}

variable "kafka_broker_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "hosted_zone_id" {
  description = "Route53 hosted zone of the customer record; the operator's role may change only it."
  type        = string
}

variable "record_name" {
  description = "The customer record name (e.g. tickets.example.com) whose weights the operator and watchdog write."
  type        = string
}

variable "route53_health_check_ids" {
  description = "Health checks the operator may read (Singapore output health_check_ids); empty allows any (read-only)."
  type        = list(string)
  default     = []
}

variable "operator_namespace" {
  description = "Namespace of the operator's Helm release."
  type        = string
  default     = "twinkle-system"
}

variable "operator_service_account" {
  description = "ServiceAccount of the operator (chart value serviceAccount.name; default is the release full name)."
  type        = string
  default     = "twinkle-operator"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Name of this estate in Singapore: prefix of the VPC, clusters, caches and roles."
  type        = string
  default     = "twinkle-singapore"
}

variable "region" {
  description = "AWS region of the DR targets (Singapore)."
  type        = string
  default     = "ap-southeast-1"
}

variable "azs" {
  description = "Availability zones to spread subnets, tasks, Redis and Kafka over (two or more)."
  type        = list(string)
  default     = ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"]
}

variable "vpc_cidr" {
  description = "CIDR of the Singapore VPC (/16, distinct from Seoul's)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "hosted_zone_id" {
  description = "Existing Route53 hosted zone (Z…) that holds record_name."
  type        = string
}

variable "record_name" {
  description = "The name customers use (e.g. tickets.example.com): the three weighted records share it."
  type        = string
}

variable "record_ttl" {
  description = "TTL of the weighted records in seconds (TicketEvent spec.dr.ttl)."
  type        = number
  default     = 60
}

variable "primary_endpoint" {
  description = "Host name the primary record points at: the Seoul EKS ingress load balancer."
  type        = string
}

variable "primary_health_url" {
  description = "Health URL of the primary (e.g. https://seoul.tickets.example.com/readyz), probed by Route53 and the watchdog."
  type        = string
}

variable "dr_eks_endpoint" {
  description = "Host name the dr-eks record points at: the Singapore standby EKS ingress (may not exist yet; weight 0 until it probes healthy)."
  type        = string
}

variable "dr_eks_health_url" {
  description = "Health URL of the standby EKS target."
  type        = string
}

variable "dr_ecs_origin_name" {
  description = "Name inside the zone for the DR ALB, covered by certificate_arn; empty means sg-ecs.<record_name>."
  type        = string
  default     = ""
}

variable "certificate_arn" {
  description = "ACM certificate in Singapore covering record_name and the DR ALB's origin name."
  type        = string
}

variable "workload_image" {
  description = "The twinkle workloads image (by digest) the DR ECS services run."
  type        = string
}

variable "operator_image" {
  description = "The twinkle-operator image (by digest) the standalone watchdog runs."
  type        = string
}

variable "event_manifest" {
  description = "The TicketEvent manifest the DR ECS workloads serve (the same one applied in Seoul)."
  type        = string
}

variable "topic_prefix" {
  description = "Topic and consumer-group prefix of that event on this region's Kafka (<namespace>.<event>, as the operator names them)."
  type        = string
}

variable "watchdog_enabled" {
  description = "Run the standalone DR watchdog on ECS here."
  type        = bool
  default     = true
}

variable "ecs_api_count" {
  description = "Tasks of each API (queue-api, booking-api) kept warm on ECS: the autoscaling minimum."
  type        = number
  default     = 2
}

variable "ecs_api_max_count" {
  description = "Tasks of each API at most during a failover."
  type        = number
  default     = 40
}

variable "ecs_consumer_count" {
  description = "Tasks of each consumer (queue-consumer, booking-consumer) on ECS."
  type        = number
  default     = 2
}

variable "build_standby_eks" {
  description = "Build the Singapore standby EKS cluster (false in normal operation; set true when the primary fails, as the DR plan's provisioning step)."
  type        = bool
  default     = false
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version of the standby cluster."
  type        = string
  default     = "1.33"
}

variable "eks_api_allowed_cidrs" {
  description = "Extra CIDRs allowed on the standby cluster's private API endpoint."
  type        = list(string)
  default     = []
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed on the standby cluster's public API endpoint; empty keeps it private."
  type        = list(string)
  default     = []
}

variable "eks_admin_principal_arns" {
  description = "IAM principals given cluster-admin on the standby cluster."
  type        = list(string)
  default     = []
}

variable "eks_node_instance_types" {
  description = "Instance types of the standby node group."
  type        = list(string)
  default     = ["c7i.2xlarge"]
}

variable "eks_node_min_size" {
  description = "Minimum (and initial) nodes of the standby node group."
  type        = number
  default     = 3
}

variable "eks_node_max_size" {
  description = "Maximum nodes of the standby node group."
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
  description = "\"msk\" or \"self-managed\" (Kafka on the standby EKS, installed outside Terraform)."
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

variable "operator_namespace" {
  description = "Namespace of the operator's Helm release on the standby cluster."
  type        = string
  default     = "twinkle-system"
}

variable "operator_service_account" {
  description = "ServiceAccount of the operator on the standby cluster."
  type        = string
  default     = "twinkle-operator"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

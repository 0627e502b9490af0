variable "name" {
  description = "Name of the EKS cluster."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane (the operator supports 1.33-1.37)."
  type        = string
  default     = "1.33"
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more zones) for the control-plane ENIs and the nodes."
  type        = list(string)
}

variable "api_allowed_cidrs" {
  description = "CIDRs allowed to reach the private API endpoint (normally the VPC and a VPN)."
  type        = list(string)
}

variable "public_access_cidrs" {
  description = "CIDRs allowed on the public API endpoint; empty (default) disables the public endpoint."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "Never open the Kubernetes API to the whole internet."
  }
}

variable "kms_key_arn" {
  description = "KMS key for Kubernetes Secrets, the control-plane log group and node volumes."
  type        = string
}

variable "admin_principal_arns" {
  description = "IAM roles or users granted cluster-admin through EKS access entries."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["c7i.2xlarge"]
}

variable "node_min_size" {
  description = "Minimum nodes in the managed node group."
  type        = number
  default     = 3
}

variable "node_desired_size" {
  description = "Nodes at creation (later owned by the cluster autoscaler)."
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Maximum nodes in the managed node group."
  type        = number
  default     = 30
}

variable "node_disk_gib" {
  description = "Root volume size of each node in GiB."
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "Days to keep control-plane logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}

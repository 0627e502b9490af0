variable "role_name" {
  description = "Name of the IAM role."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer" {
  description = "OIDC issuer URL of the EKS cluster."
  type        = string
}

variable "namespace" {
  description = "Namespace the operator chart is installed in."
  type        = string
  default     = "twinkle-system"
}

variable "service_account" {
  description = "The operator's ServiceAccount (the chart's default is the release full name)."
  type        = string
  default     = "twinkle-operator"
}

variable "hosted_zone_id" {
  description = "Route53 hosted zone of the weighted records."
  type        = string
}

variable "record_name" {
  description = "The weighted record name."
  type        = string
}

variable "lease_record_name" {
  description = "The DR lease TXT record; empty means _twinkle-dr-lease.<record_name>."
  type        = string
  default     = ""
}

variable "health_check_ids" {
  description = "Health checks whose status the operator may read; empty allows any (read-only)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags of the role."
  type        = map(string)
  default     = {}
}

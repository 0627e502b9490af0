variable "name" {
  description = "Name of the VPC and prefix of everything in it."
  type        = string
}

variable "cidr" {
  description = "IPv4 CIDR of the VPC (a /16: subnets are /20 blocks of it)."
  type        = string

  validation {
    condition     = can(cidrhost(var.cidr, 0)) && tonumber(split("/", var.cidr)[1]) <= 16
    error_message = "cidr must be an IPv4 CIDR of /16 or larger."
  }
}

variable "azs" {
  description = "Availability zones to spread the subnets over: at least two, at most eight."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 2 && length(var.azs) <= 8
    error_message = "Give two to eight availability zones: a single zone is not highly available."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep VPC flow logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}

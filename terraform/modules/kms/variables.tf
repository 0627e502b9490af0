variable "name" {
  description = "Name of the key alias (alias/<name>) and prefix of its description."
  type        = string
}

variable "tags" {
  description = "Tags of the key."
  type        = map(string)
  default     = {}
}

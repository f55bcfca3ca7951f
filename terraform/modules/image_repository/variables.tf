variable "name" {
  description = "Repository name."
  type        = string
}

variable "image_keep_count" {
  description = "Images kept in the repository by the lifecycle policy."
  type        = number
  default     = 10
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

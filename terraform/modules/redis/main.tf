# ElastiCache (Redis OSS 7) for the live queue and booking state: a primary
# and replicas in different zones with automatic failover (Multi-AZ), TLS
# required in transit, an AUTH token, encryption at rest with the region's
# key, and `noeviction` (admission and booking state must never be evicted).
#
# The AUTH token is generated once by Secrets Manager and kept in a secret;
# the workloads get a ready `rediss://` URL from a second secret. Rotation:
# set auth_token_update_strategy = "ROTATE" with a new token, roll the
# workloads, then "SET" (see terraform/README.md).

data "aws_secretsmanager_random_password" "auth" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "auth" {
  # checkov:skip=CKV2_AWS_57: ElastiCache AUTH tokens rotate through a two-step ROTATE/SET on the replication group, not a Secrets Manager rotation Lambda; the procedure is in terraform/README.md.
  name_prefix             = "${var.name}/redis-auth-"
  description             = "AUTH token of the ${var.name} Redis replication group"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "auth" {
  secret_id     = aws_secretsmanager_secret.auth.id
  secret_string = data.aws_secretsmanager_random_password.auth.random_password

  # The data source draws a new password at every plan; the first one stays.
  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_elasticache_parameter_group" "this" {
  name   = "${var.name}-redis7"
  family = "redis7"

  # Queue positions, sessions and seat counters are the system of record
  # while a sale runs: a full Redis must refuse writes, never drop keys.
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }

  tags = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-redis-"
  description = "Redis ${var.name}: TLS port from the workload subnets only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-redis" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.this.id
  description       = "Redis TLS from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 6379
  to_port           = 6379
  cidr_ipv4         = each.value
}

resource "aws_cloudwatch_log_group" "slow" {
  name              = "/twinkle/${var.name}/redis-slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "Twinkle Ticket live state (${var.name})"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.this.name
  subnet_group_name    = aws_elasticache_subnet_group.this.name
  security_group_ids   = [aws_security_group.this.id]

  # Multi-AZ: a primary and replicas spread over the subnets' zones.
  num_cache_clusters         = var.replicas + 1
  automatic_failover_enabled = true
  multi_az_enabled           = true

  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = aws_secretsmanager_secret_version.auth.secret_string
  auth_token_update_strategy = "ROTATE"
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn

  snapshot_retention_limit   = var.snapshot_retention_days
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.slow.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  tags = var.tags
}

# What the workloads read (TWINKLE_REDIS): the TLS URL with the token.
resource "aws_secretsmanager_secret" "url" {
  # checkov:skip=CKV2_AWS_57: Derived from the AUTH token secret; it changes when that token is rotated (terraform/README.md), never on its own.
  name_prefix             = "${var.name}/redis-url-"
  description             = "rediss:// URL (with AUTH token) of the ${var.name} Redis primary"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "url" {
  secret_id = aws_secretsmanager_secret.url.id
  secret_string = format(
    "rediss://:%s@%s:6379",
    aws_secretsmanager_secret_version.auth.secret_string,
    aws_elasticache_replication_group.this.primary_endpoint_address,
  )
}

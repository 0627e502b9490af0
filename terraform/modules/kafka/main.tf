# Kafka for the queue, bookings and outcomes topics.
#
# mode = "msk" (default): an Amazon MSK cluster in the private subnets,
# brokers spread over the zones, TLS between clients and brokers and inside
# the cluster, SASL/SCRAM authentication (the credentials are a Secrets
# Manager secret), encryption at rest, broker logs and Prometheus exporters,
# and the broker settings the operator relies on: no auto-created topics,
# min.insync.replicas 2.
#
# mode = "self-managed": no MSK; Kafka runs on the EKS cluster (e.g. the
# Strimzi operator installed with Helm, outside Terraform) and
# `self_managed_bootstrap` is passed through as the bootstrap address.

locals {
  msk = var.mode == "msk"
}

resource "aws_security_group" "this" {
  count       = local.msk ? 1 : 0
  name_prefix = "${var.name}-msk-"
  description = "MSK ${var.name}: SASL/SCRAM over TLS from the workload subnets only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-msk" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each          = local.msk ? toset(var.allowed_cidrs) : toset([])
  security_group_id = aws_security_group.this[0].id
  description       = "Kafka SASL/SCRAM TLS from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 9096
  to_port           = 9096
  cidr_ipv4         = each.value
}

resource "aws_msk_configuration" "this" {
  count          = local.msk ? 1 : 0
  name           = var.name
  kafka_versions = [var.kafka_version]
  server_properties = join("\n", [
    # The operator creates every topic through the Admin API.
    "auto.create.topics.enable=false",
    "default.replication.factor=3",
    "min.insync.replicas=2",
    "unclean.leader.election.enable=false",
    "delete.topic.enable=true",
  ])
}

resource "aws_cloudwatch_log_group" "brokers" {
  count             = local.msk ? 1 : 0
  name              = "/twinkle/${var.name}/msk-brokers"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_msk_cluster" "this" {
  count                  = local.msk ? 1 : 0
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = length(var.subnet_ids) * var.brokers_per_zone
  enhanced_monitoring    = "PER_TOPIC_PER_BROKER"

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this[0].id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_gib
      }
    }

    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  client_authentication {
    unauthenticated = false
    sasl {
      scram = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this[0].arn
    revision = aws_msk_configuration.this[0].latest_revision
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers[0].name
      }
    }
  }

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  tags = var.tags
}

# SASL/SCRAM credentials: MSK requires the secret name to start with
# AmazonMSK_ and a customer-managed key.
data "aws_secretsmanager_random_password" "scram" {
  count               = local.msk ? 1 : 0
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "scram" {
  # checkov:skip=CKV2_AWS_57: MSK SCRAM credentials are rotated by writing a new secret version and rolling the clients; a rotation Lambda cannot restart the workloads.
  count                   = local.msk ? 1 : 0
  name                    = "AmazonMSK_${var.name}"
  description             = "SASL/SCRAM user of the Twinkle workloads and operator on ${var.name}"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "scram" {
  count     = local.msk ? 1 : 0
  secret_id = aws_secretsmanager_secret.scram[0].id
  secret_string = jsonencode({
    username = "twinkle"
    password = data.aws_secretsmanager_random_password.scram[0].random_password
  })

  lifecycle {
    ignore_changes = [secret_string]
  }
}

data "aws_iam_policy_document" "scram" {
  count = local.msk ? 1 : 0
  statement {
    sid       = "MskReadsTheScramSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.scram[0].arn]
    principals {
      type        = "Service"
      identifiers = ["kafka.amazonaws.com"]
    }
  }
}

resource "aws_secretsmanager_secret_policy" "scram" {
  count      = local.msk ? 1 : 0
  secret_arn = aws_secretsmanager_secret.scram[0].arn
  policy     = data.aws_iam_policy_document.scram[0].json
}

resource "aws_msk_scram_secret_association" "this" {
  count           = local.msk ? 1 : 0
  cluster_arn     = aws_msk_cluster.this[0].arn
  secret_arn_list = [aws_secretsmanager_secret.scram[0].arn]

  depends_on = [aws_secretsmanager_secret_version.scram]
}

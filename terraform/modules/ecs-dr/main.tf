# The always-on DR target in Singapore (SPEC §4, "DR ECS"): the Twinkle
# workloads on ECS Fargate behind an internet-facing ALB (TLS, WAF, access
# logs), plus the standalone DR watchdog (`twinkle-operator dr watch`), which
# must not live only in the region it protects.
#
# Services (all in the private subnets, no public IPs), as the operator
# deploys them on EKS (operator/src/controller/workloads.rs):
#   queue-api         `twinkle queue-api`, behind the ALB (the dr-ecs record)
#   booking-api       `twinkle booking-api`, behind the ALB (slots, bookings)
#   queue-consumer    `twinkle queue-consumer` (the queue keeper)
#   booking-consumer  `twinkle booking-consumer` (the decider)
#   dr-watchdog       `twinkle-operator dr watch`, Route53 rights of ../dr-access
#
# The images are distroless (no shell), so each task starts with a tiny
# `config` container that writes the event manifest, the token signing key
# and the watchdog config into a task-local volume, read-only for the app.

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_elb_service_account" "current" {}

locals {
  run_dir = "/run/twinkle"
  log_options = {
    "awslogs-group"         = aws_cloudwatch_log_group.this.name
    "awslogs-region"        = data.aws_region.current.name
    "awslogs-stream-prefix" = "twinkle"
  }
  hardened = {
    readonlyRootFilesystem = true
    user                   = "65532:65532"
    linuxParameters        = { capabilities = { drop = ["ALL"] }, initProcessEnabled = true }
  }
  # Writes the files the app reads, owned by the app's user, then exits.
  config_container = {
    name      = "config"
    image     = var.config_init_image
    essential = false
    command = [
      "sh", "-c",
      join(" && ", [
        "printf '%s' \"$EVENT_MANIFEST\" > ${local.run_dir}/event.yaml",
        "printf '%s' \"$TOKEN_SECRET\" > ${local.run_dir}/token",
        "printf '%s' \"$DR_CONFIG\" > ${local.run_dir}/dr.yaml",
        "chown -R 65532:65532 ${local.run_dir}",
        "chmod 0400 ${local.run_dir}/*",
      ]),
    ]
    readonlyRootFilesystem = true
    environment = [
      { name = "EVENT_MANIFEST", value = var.event_manifest },
      { name = "DR_CONFIG", value = var.watchdog_config_yaml },
    ]
    secrets          = [{ name = "TOKEN_SECRET", valueFrom = aws_secretsmanager_secret.token.arn }]
    mountPoints      = [{ sourceVolume = "run", containerPath = local.run_dir, readOnly = false }]
    logConfiguration = { logDriver = "awslogs", options = local.log_options }
  }
  depends_on_config = [{ containerName = "config", condition = "SUCCESS" }]
  app_mounts        = [{ sourceVolume = "run", containerPath = local.run_dir, readOnly = true }]
  workload_env = [
    { name = "TWINKLE_KAFKA", value = var.kafka_bootstrap },
    { name = "TWINKLE_EVENT", value = "${local.run_dir}/event.yaml" },
    { name = "TWINKLE_TOKEN_SECRET_FILE", value = "${local.run_dir}/token" },
    # Topics <prefix>.queue|bookings|outcomes, groups <prefix>.<role>.
    { name = "TWINKLE_TOPIC_PREFIX", value = var.topic_prefix },
    { name = "TWINKLE_GROUP", value = var.topic_prefix },
    { name = "TWINKLE_LISTEN", value = "0.0.0.0:8080" },
    { name = "TWINKLE_LOG_JSON", value = "true" },
  ]
  # The APIs sit behind the ALB (and trust its X-Forwarded-For); the
  # consumers only serve /healthz, /readyz and /metrics.
  workloads = {
    queue-api        = { api = true, count = var.queue_api_count }
    booking-api      = { api = true, count = var.booking_api_count }
    queue-consumer   = { api = false, count = var.consumer_count }
    booking-consumer = { api = false, count = var.consumer_count }
  }
  apis             = { for name, w in local.workloads : name => w if w.api }
  workload_secrets = [{ name = "TWINKLE_REDIS", valueFrom = var.redis_url_secret_arn }]
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/twinkle/${var.name}/ecs"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enhanced"
  }

  configuration {
    managed_storage_configuration {
      fargate_ephemeral_storage_kms_key_id = var.kms_key_id
    }
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# ---------------------------------------------------------------- secrets

data "aws_secretsmanager_random_password" "token" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "token" {
  # checkov:skip=CKV2_AWS_57: Rotating the token signing key invalidates every issued queue ticket; it is rotated deliberately between sales, not on a schedule.
  name_prefix             = "${var.name}/token-"
  description             = "Signing key of queue tickets and admission tokens (TWINKLE_TOKEN_SECRET_FILE)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "token" {
  secret_id     = aws_secretsmanager_secret.token.id
  secret_string = data.aws_secretsmanager_random_password.token.random_password

  lifecycle {
    ignore_changes = [secret_string]
  }
}

# ---------------------------------------------------------------- IAM

data "aws_iam_policy_document" "tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Pulls images, writes logs, injects the secrets (not used by the apps).
resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.token.arn, var.redis_url_secret_arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-task-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# The workloads call no AWS API.
resource "aws_iam_role" "workloads" {
  name_prefix        = "${var.name}-app-"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

# The watchdog writes the DR weights: Route53 on the one zone only.
resource "aws_iam_role" "watchdog" {
  name_prefix        = "${var.name}-watchdog-"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "watchdog" {
  name   = "route53-dr-weights"
  role   = aws_iam_role.watchdog.id
  policy = var.watchdog_route53_policy_json
}

# ---------------------------------------------------------------- network

resource "aws_security_group" "alb" {
  name_prefix = "${var.name}-alb-"
  description = "Public ALB of the DR workloads: HTTPS (and HTTP redirect) from customers"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-alb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from customers"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  # checkov:skip=CKV_AWS_260: Port 80 only answers with a permanent redirect to HTTPS (aws_lb_listener.http); customers typing the bare name must land somewhere.
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from customers, redirected to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the API tasks"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_security_group" "tasks" {
  name_prefix = "${var.name}-tasks-"
  description = "Fargate tasks of the DR workloads and watchdog"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-tasks" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "HTTP from the ALB"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_in_vpc" {
  for_each          = toset(["6379", "9092", "9094", "9096"])
  security_group_id = aws_security_group.tasks.id
  description       = "Redis and Kafka inside the VPC (port ${each.value})"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS: ECR, Secrets Manager, CloudWatch, Route53, and the watchdog's health probes"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# ---------------------------------------------------------------- ALB

resource "aws_s3_bucket" "alb_logs" {
  # checkov:skip=CKV_AWS_18: This bucket receives the ALB access logs; logging its own accesses to another bucket adds nothing here (CloudTrail data events cover it).
  # checkov:skip=CKV_AWS_144: ALB access logs are regional diagnostics; a copy in another region is not needed to recover anything.
  # checkov:skip=CKV2_AWS_62: Nothing consumes events of new log objects.
  # checkov:skip=CKV_AWS_145: ALB access logging supports only SSE-S3 (AES256) on the target bucket, not SSE-KMS.
  bucket_prefix = "${var.name}-alb-logs-"
  force_destroy = false
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "alb_logs" {
  bucket                  = aws_s3_bucket.alb_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id
  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "alb_logs" {
  statement {
    sid       = "ElbWritesAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.alb_logs.arn}/alb/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.alb_logs.arn, "${aws_s3_bucket.alb_logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id
  policy = data.aws_iam_policy_document.alb_logs.json
}

resource "aws_lb" "this" {
  name_prefix                = "twdr-"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  # WebSockets (queue position, seat counts) stay open between pushes.
  idle_timeout = 120

  access_logs {
    bucket  = aws_s3_bucket.alb_logs.id
    prefix  = "alb"
    enabled = true
  }

  tags       = var.tags
  depends_on = [aws_s3_bucket_policy.alb_logs]
}

resource "aws_lb_target_group" "api" {
  # checkov:skip=CKV_AWS_378: TLS terminates at the ALB; the workloads serve plain HTTP on 8080 inside the private subnets, reachable only from the ALB's security group.
  for_each             = local.apis
  name_prefix          = each.key == "queue-api" ? "twque-" : "twbkg-"
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  # Everything else (pages, queue API and WebSocket, openapi) is queue-api.
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api["queue-api"].arn
  }

  tags = var.tags
}

# Slots, bookings and the slots WebSocket go to booking-api.
resource "aws_lb_listener_rule" "booking" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api["booking-api"].arn
  }

  condition {
    path_pattern {
      values = ["/api/events/*/slots", "/api/events/*/bookings", "/api/events/*/bookings/*", "/ws/events/*/slots"]
    }
  }

  tags = var.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }

  tags = var.tags
}

# ---------------------------------------------------------------- WAF

resource "aws_wafv2_web_acl" "this" {
  name  = var.name
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-common"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "common"
      sampled_requests_enabled   = true
    }
  }

  # Scalpers' bots hide behind anonymising proxies, VPNs and Tor: blocked
  # unless waf_block_anonymous_ips is false (then only counted). Addresses
  # of hosting providers are only counted (corporate egress lives there).
  rule {
    name     = "aws-anonymous-ip"
    priority = 3
    override_action {
      dynamic "none" {
        for_each = var.waf_block_anonymous_ips ? [1] : []
        content {}
      }
      dynamic "count" {
        for_each = var.waf_block_anonymous_ips ? [] : [1]
        content {}
      }
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAnonymousIpList"
        vendor_name = "AWS"
        rule_action_override {
          name = "HostingProviderIPList"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  # A blunt per-address backstop; the enter endpoint has its own per-client
  # limits (SPEC §2).
  rule {
    name     = "per-ip-rate"
    priority = 4
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_5min
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "per-ip-rate"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

resource "aws_cloudwatch_log_group" "waf" {
  # WAF requires the aws-waf-logs- prefix.
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
}

# ---------------------------------------------------------------- tasks

resource "aws_ecs_task_definition" "workload" {
  for_each                 = local.workloads
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.workloads.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "run"
  }

  container_definitions = jsonencode([
    local.config_container,
    merge(local.hardened, {
      name             = each.key
      image            = var.workload_image
      essential        = true
      command          = each.value.api ? [each.key, "--trust-forwarded-for"] : [each.key]
      dependsOn        = local.depends_on_config
      portMappings     = [{ containerPort = 8080, protocol = "tcp", name = "http" }]
      environment      = local.workload_env
      secrets          = local.workload_secrets
      mountPoints      = local.app_mounts
      logConfiguration = { logDriver = "awslogs", options = local.log_options }
    }),
  ])

  tags = var.tags
}

resource "aws_ecs_task_definition" "watchdog" {
  family                   = "${var.name}-watchdog"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.watchdog.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "run"
  }

  container_definitions = jsonencode([
    local.config_container,
    merge(local.hardened, {
      name      = "watchdog"
      image     = var.operator_image
      essential = true
      command   = ["dr", "watch"]
      dependsOn = local.depends_on_config
      environment = [
        { name = "TWINKLE_DR_CONFIG", value = "${local.run_dir}/dr.yaml" },
        { name = "TWINKLE_DR_LISTEN", value = "0.0.0.0:9090" },
        { name = "AWS_REGION", value = data.aws_region.current.name },
      ]
      mountPoints      = local.app_mounts
      logConfiguration = { logDriver = "awslogs", options = local.log_options }
    }),
  ])

  tags = var.tags
}

resource "aws_ecs_service" "workload" {
  for_each                          = local.workloads
  name                              = each.key
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.workload[each.key].arn
  desired_count                     = each.value.count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = each.value.api ? 30 : null
  propagate_tags                    = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = each.value.api ? [each.key] : []
    content {
      target_group_arn = aws_lb_target_group.api[load_balancer.value].arn
      container_name   = load_balancer.value
      container_port   = 8080
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # Application Auto Scaling moves the API counts during a failover.
  lifecycle {
    ignore_changes = [desired_count]
  }

  tags       = var.tags
  depends_on = [aws_lb_listener.https, aws_lb_listener_rule.booking]
}

resource "aws_ecs_service" "watchdog" {
  name             = "dr-watchdog"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.watchdog.arn
  desired_count    = var.watchdog_enabled ? 1 : 0
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  propagate_tags   = "SERVICE"
  # One watchdog task at a time from this service; the Route53 TXT lease
  # fences it against the in-cluster watchdog in Seoul anyway.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags
}

# Keep the APIs between min and max on CPU, as the HPAs do on EKS.
resource "aws_appautoscaling_target" "api" {
  for_each           = local.apis
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.workload[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.count
  max_capacity       = var.api_max_count
}

resource "aws_appautoscaling_policy" "api_cpu" {
  for_each           = local.apis
  name               = "${var.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.api[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.api[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = 70
    scale_in_cooldown  = 120
    scale_out_cooldown = 30
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# Singapore: the disaster-recovery region (SPEC §4).
#
# * DR ECS: the workloads on Fargate behind an ALB, always on (warm), and
#   the standalone DR watchdog, outside the region it protects.
# * DR EKS: a standby cluster, built only when build_standby_eks = true
#   (what the watchdog's provisioning webhook asks for when the primary
#   fails; the weights ramp to it once it probes healthy).
# * Redis and Kafka of this region.
# * The Route53 weighted records of all three targets, with health checks,
#   at 100/0/0. They live here, with the DR tooling, so that changing them
#   never needs the primary region.

module "kms" {
  source = "../../modules/kms"
  name   = var.name
}

module "network" {
  source      = "../../modules/network"
  name        = var.name
  cidr        = var.vpc_cidr
  azs         = var.azs
  kms_key_arn = module.kms.key_arn
}

module "redis" {
  source        = "../../modules/redis"
  name          = "${var.name}-redis"
  vpc_id        = module.network.vpc_id
  subnet_ids    = module.network.private_subnet_ids
  allowed_cidrs = module.network.private_subnet_cidrs
  kms_key_arn   = module.kms.key_arn
  node_type     = var.redis_node_type
  replicas      = var.redis_replicas
}

module "kafka" {
  source                 = "../../modules/kafka"
  name                   = "${var.name}-kafka"
  mode                   = var.kafka_mode
  self_managed_bootstrap = var.kafka_self_managed_bootstrap
  vpc_id                 = module.network.vpc_id
  subnet_ids             = module.network.private_subnet_ids
  allowed_cidrs          = module.network.private_subnet_cidrs
  kms_key_arn            = module.kms.key_arn
  broker_instance_type   = var.kafka_broker_instance_type
}

# ------------------------------------------------------------ DR EKS (standby)

module "eks_standby" {
  count                = var.build_standby_eks ? 1 : 0
  source               = "../../modules/eks"
  name                 = "${var.name}-standby"
  kubernetes_version   = var.kubernetes_version
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.private_subnet_ids
  api_allowed_cidrs    = concat([var.vpc_cidr], var.eks_api_allowed_cidrs)
  public_access_cidrs  = var.eks_public_access_cidrs
  kms_key_arn          = module.kms.key_arn
  admin_principal_arns = var.eks_admin_principal_arns
  node_instance_types  = var.eks_node_instance_types
  node_min_size        = var.eks_node_min_size
  node_desired_size    = var.eks_node_min_size
  node_max_size        = var.eks_node_max_size
}

module "operator_irsa_standby" {
  count             = var.build_standby_eks ? 1 : 0
  source            = "../../modules/operator-irsa"
  role_name         = "${var.name}-standby-operator"
  oidc_provider_arn = module.eks_standby[0].oidc_provider_arn
  oidc_issuer       = module.eks_standby[0].oidc_issuer
  namespace         = var.operator_namespace
  service_account   = var.operator_service_account
  hosted_zone_id    = var.hosted_zone_id
  record_name       = var.record_name
  health_check_ids  = values(module.dns.health_check_ids)
}

# ------------------------------------------------------------ DR ECS (active)

# A name inside the zone for the ALB, covered by the listener certificate, so
# the watchdog's HTTPS probe validates (the ALB's own name would not).
resource "aws_route53_record" "dr_ecs_origin" {
  zone_id = var.hosted_zone_id
  name    = local.dr_ecs_origin
  type    = "CNAME"
  ttl     = 60
  records = [module.ecs.alb_dns_name]
}

locals {
  dr_ecs_origin = var.dr_ecs_origin_name != "" ? var.dr_ecs_origin_name : "sg-ecs.${var.record_name}"
}

module "watchdog_access" {
  source           = "../../modules/dr-access"
  hosted_zone_id   = var.hosted_zone_id
  record_name      = var.record_name
  health_check_ids = values(module.dns.health_check_ids)
}

module "ecs" {
  source                       = "../../modules/ecs-dr"
  name                         = "${var.name}-dr"
  vpc_id                       = module.network.vpc_id
  vpc_cidr                     = var.vpc_cidr
  public_subnet_ids            = module.network.public_subnet_ids
  private_subnet_ids           = module.network.private_subnet_ids
  kms_key_arn                  = module.kms.key_arn
  kms_key_id                   = module.kms.key_id
  certificate_arn              = var.certificate_arn
  workload_image               = var.workload_image
  operator_image               = var.operator_image
  event_manifest               = var.event_manifest
  topic_prefix                 = var.topic_prefix
  kafka_bootstrap              = module.kafka.bootstrap_servers
  redis_url_secret_arn         = module.redis.url_secret_arn
  watchdog_enabled             = var.watchdog_enabled
  watchdog_config_yaml         = module.dns.watchdog_config_yaml
  watchdog_route53_policy_json = module.watchdog_access.policy_json
  queue_api_count              = var.ecs_api_count
  booking_api_count            = var.ecs_api_count
  api_max_count                = var.ecs_api_max_count
  consumer_count               = var.ecs_consumer_count
}

# ------------------------------------------------------------ Route53 weights

module "dns" {
  source         = "../../modules/route53-dr"
  hosted_zone_id = var.hosted_zone_id
  record_name    = var.record_name
  ttl            = var.record_ttl
  targets = {
    primary = {
      endpoint   = var.primary_endpoint
      health_url = var.primary_health_url
    }
    dr_eks = {
      endpoint   = var.dr_eks_endpoint
      health_url = var.dr_eks_health_url
    }
    dr_ecs = {
      endpoint   = module.ecs.alb_dns_name
      health_url = "https://${local.dr_ecs_origin}/readyz"
    }
  }
}

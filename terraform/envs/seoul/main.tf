# Seoul: the primary region (SPEC §1, §4). The EKS cluster that normally
# serves 100 % of the traffic, with the operator's IRSA role for Route53,
# Redis and Kafka for the workloads.

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

module "eks" {
  source               = "../../modules/eks"
  name                 = var.name
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

module "operator_irsa" {
  source            = "../../modules/operator-irsa"
  role_name         = "${var.name}-operator"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  namespace         = var.operator_namespace
  service_account   = var.operator_service_account
  hosted_zone_id    = var.hosted_zone_id
  record_name       = var.record_name
  health_check_ids  = var.route53_health_check_ids
}

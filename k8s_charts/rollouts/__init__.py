"""Argo Rollouts objects (Rollout, AnalysisTemplate) for the Supabase API services."""

from k8s_charts.rollouts.chart import CANARY_TARGETS, RolloutsChart

__all__ = ["CANARY_TARGETS", "RolloutsChart"]

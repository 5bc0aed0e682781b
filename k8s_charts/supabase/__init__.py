"""Supabase on EKS as cdk8s charts (see /work/shared/SUPABASE.md for the contract)."""

from k8s_charts.supabase.bootstrap import SupabaseDbBootstrapChart
from k8s_charts.supabase.chart import SupabaseChart, supabase_charts
from k8s_charts.supabase.props import AuthProps, OAuthProviderProps, Scaling, SupabaseProps

__all__ = [
    "AuthProps",
    "OAuthProviderProps",
    "Scaling",
    "SupabaseChart",
    "SupabaseDbBootstrapChart",
    "SupabaseProps",
    "supabase_charts",
]

"""Supabase on EKS as cdk8s charts (see /work/shared/SUPABASE.md for the contract).

Import from the modules (`k8s_charts.supabase.chart`, `.props`, `.images`, ...). The package
itself imports nothing, so the tools that only need a fact from it (an image tag, the RDS CA)
do not start the jsii runtime that the charts need.
"""

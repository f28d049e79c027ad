"""AWS control plane (the aws worker): sessions per account, Organizations, IAM, SSM, Parameter Store.

Submodules import boto3; nothing here is imported by workflows.
"""

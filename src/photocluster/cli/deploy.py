"""``photocluster deploy``: the stack into AWS (or an emulator), or its monthly cost."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from photocluster.cli.common import SubParsers, command
from photocluster.config import Settings


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    """Deploy (or destroy) the stack in terraform/ with these tfvars."""
    from photocluster.deploy import costs
    from photocluster.deploy.images import image_tag
    from photocluster.deploy.stages import Deployment, Target, aws_clients, deploy, destroy
    from photocluster.deploy.terraform import Terraform

    folder, tfvars = Path(args.terraform), Path(args.tfvars)
    if args.costs:
        print(costs.table(folder, tfvars, Path(args.prices)))
        return 0
    logging.getLogger("photocluster.deploy").setLevel(logging.INFO)
    target = Target.from_tfvars(tfvars)
    deployment = Deployment(
        Terraform(folder),
        tfvars.resolve(),
        aws_clients(target.region, args.emulator),
        Path(args.repo),
        args.emulator,
    )
    if args.destroy:
        destroy(deployment, args.confirm)
        return 0
    outputs = deploy(deployment, args.tag or image_tag(Path(args.repo)))
    print(json.dumps({"api_url": outputs.get("api_url"), "bucket": outputs.get("bucket_name")}))
    return 0


def register(sub: SubParsers) -> None:
    p = command(sub, "deploy", cmd_deploy, "deploy the stack (make deploy), or show its cost")
    p.add_argument("--tfvars", default="terraform/terraform.tfvars")
    p.add_argument("--terraform", default="terraform", help="the root module's folder")
    p.add_argument("--repo", default=".", help="the checkout the images are built from")
    p.add_argument("--tag", help="image tag (default: the git commit)")
    p.add_argument("--emulator", help="an AWS emulator's URL (moto): no AWS, no Docker")
    p.add_argument("--destroy", action="store_true", help="terraform destroy instead")
    p.add_argument(
        "--confirm",
        metavar="NAME",
        help="destroy a stack with deletion_protection: its <project>-<environment>",
    )
    p.add_argument("--costs", action="store_true", help="print the idle monthly cost and stop")
    p.add_argument("--prices", default="terraform/prices.json", help="unit prices (--costs)")

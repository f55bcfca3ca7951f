"""``make deploy``: the whole stack into an AWS account, in three stages.

1. the state bucket (created on first use) and ``backend.tf``, then ``terraform init``;
   a targeted apply of the image repositories alone;
2. the three images built for linux/amd64 and pushed under a tag from the git commit;
3. ``terraform apply`` of everything with the pushed image URIs.

With ``--emulator URL`` every step runs against an AWS emulator (moto) instead, the one
thing left out being Docker: a tiny image manifest is pushed to the emulator's ECR in place
of each image. A test runs it so (``tests/integration/test_deploy.py``).

* :mod:`~photocluster.deploy.terraform`: running Terraform;
* :mod:`~photocluster.deploy.state`: the remote state's bucket and backend;
* :mod:`~photocluster.deploy.images`: building and pushing the images;
* :mod:`~photocluster.deploy.stages`: the stages, in order;
* :mod:`~photocluster.deploy.costs`: what a configuration costs a month when idle.
"""

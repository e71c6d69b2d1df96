"""The command-line tools the GitLab pipeline runs around `pulumi`: CI credentials from the job's OIDC token
(`ci_credentials`), the state bucket's one-time bootstrap (`state_bucket`), the app pin and its artifact (`app_pin`),
the image hand-off between Packer and the stacks (`image_handoff`), the recovery after an interrupted update
(`recover`, for operators) and the OSS client they share (`oss`). Run each as `python -m pipeline.<tool>`.

May import the program's settings constants (`infra.config`); the program never imports this package.
"""

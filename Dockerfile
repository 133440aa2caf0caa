# Training image for VESSL (4x A100): CUDA PyTorch base, the package installed, `wmtp` as entry point.
#   docker build -t wmtp-lightning .
#   docker run --gpus all -v $PWD/storage:/workspace/storage wmtp-lightning fit --config configs/verifiable.yaml --config configs/vessl.yaml
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
WORKDIR /workspace
COPY pyproject.toml README.md ./
COPY wmtp_lightning ./wmtp_lightning
COPY configs ./configs
COPY scripts ./scripts
# torch comes from the base image; pip keeps it because pyproject's range admits it.
RUN pip install --no-cache-dir -e '.[vessl]'
ENTRYPOINT ["wmtp"]
CMD ["--help"]

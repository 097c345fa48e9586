# The demo services (vector, api, seed) for compose/docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY chaoslab ./chaoslab
RUN pip install --no-cache-dir .
# one matrix-vector product per search: BLAS threads would only fight the other services
ENV OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
CMD ["python", "-m", "chaoslab.demo.api", "--help"]

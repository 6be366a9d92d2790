# The app image: API, worker and CLI share it (`longtasks api|worker|migrate`).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.runtime.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.runtime.lock
COPY . .
RUN pip install --no-cache-dir --no-deps . && useradd --system longtasks
USER longtasks
EXPOSE 8000
CMD ["longtasks", "api"]

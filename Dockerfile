# The app image: API, worker and CLI share it (`longtasks api|worker|migrate`).

# The web page, built from web/ (@longtasks/ui) into api/static.
FROM node:20-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build:page

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.runtime.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.runtime.lock
COPY . .
COPY --from=web /src/api/static api/static
RUN pip install --no-cache-dir --no-deps . && useradd --system longtasks
USER longtasks
EXPOSE 8000
CMD ["longtasks", "api"]

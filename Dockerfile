# jiandu 监督 — one image for every production role: `jiandu migrate`, `jiandu api`,
# `jiandu worker` (see docker-compose.yml). Build: docker build -t jiandu:0.1.0 .
#
# Two stages: the first installs the project into a virtualenv, the second copies only that
# virtualenv, so pip's caches and the source tree stay out of the runtime image. Every
# dependency ships manylinux wheels for x86_64 and aarch64, so no compiler is needed.

FROM python:3.11-slim-trixie AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/jiandu
WORKDIR /src
# Metadata first: README.md is the package's readme (pyproject.toml), so it must be present.
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY producers ./producers
COPY streams ./streams
COPY projections ./projections
COPY api ./api
COPY dashboards ./dashboards
COPY jiandu ./jiandu
# A regular (non-editable) install: the runtime stage does not keep /src.
RUN /opt/jiandu/bin/pip install .


FROM python:3.11-slim-trixie
ENV PATH=/opt/jiandu/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    # Inside a container the API must listen on all interfaces (the settings default is
    # 127.0.0.1, right for `jiandu up` on a desk, unreachable from another container).
    JIANDU_API_HOST=0.0.0.0 \
    JIANDU_DATA_DIR=/var/lib/jiandu

# A fixed, unprivileged uid: volume ownership stays predictable across rebuilds.
RUN groupadd --system --gid 10001 jiandu \
 && useradd --system --uid 10001 --gid jiandu --home-dir /var/lib/jiandu --shell /usr/sbin/nologin jiandu \
 && install -d -o jiandu -g jiandu -m 0750 /var/lib/jiandu

COPY --from=build /opt/jiandu /opt/jiandu

USER jiandu:jiandu
WORKDIR /var/lib/jiandu
EXPOSE 8000

# No HEALTHCHECK here: the same image runs the API (checked on /readyz), the worker and the
# one-shot migration, so each compose service declares its own.
ENTRYPOINT ["jiandu"]
CMD ["api"]

# LND for the l402d regtest network: the static lnd and lncli binaries the
# regtest launcher builds from the versions pinned in go.mod, in an empty
# image. Built by the launcher as l402d-regtest-lnd:<lnd version>; the build
# context is a directory holding just the two binaries.
FROM scratch
COPY lnd lncli /bin/
ENV HOME=/lnd PATH=/bin
WORKDIR /lnd
EXPOSE 9735 10009
ENTRYPOINT ["/bin/lnd"]

# btcd for the l402d regtest network: the static btcd and btcctl binaries the
# regtest launcher builds from the version pinned in go.mod, in an empty
# image. Built by the launcher as l402d-regtest-btcd:<btcd version>; the build
# context is a directory holding just the two binaries.
FROM scratch
COPY btcd btcctl /bin/
ENV HOME=/btcd PATH=/bin
WORKDIR /btcd
EXPOSE 18334 18444
ENTRYPOINT ["/bin/btcd"]

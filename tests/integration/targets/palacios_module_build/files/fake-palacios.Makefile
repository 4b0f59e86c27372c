# A stand-in for the Palacios top-level Makefile: the same targets the role uses, producing
# the same artifacts (v3vee.ko at the top), and recording what ran in build.log.
all:
	@grep -q '^V3_CONFIG_LINUX=y' .config || { echo "not configured for Linux" >&2; exit 1; }
	@test -f "$$(sed -n 's/^V3_CONFIG_LINUX_KERN="\(.*\)"/\1/p' .config)/Makefile" || { echo "no kernel tree" >&2; exit 1; }
	echo module > v3vee.ko
	echo all >> build.log

oldconfig:
	@while read -r line; do :; done
	echo "V3_CONFIG_SVM=y" >> .config
	echo oldconfig >> build.log

clean:
	rm -f v3vee.ko
	echo clean >> build.log

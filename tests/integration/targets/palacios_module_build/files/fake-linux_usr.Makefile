TOOLS = v3_create v3_free v3_launch v3_stop v3_pause v3_continue v3_mem
all: $(TOOLS)
$(TOOLS):
	printf '#!/bin/sh\necho %s\n' $@ > $@ && chmod +x $@
	echo $@ >> ../build.log

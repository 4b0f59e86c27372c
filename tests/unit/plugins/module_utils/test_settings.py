import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError, read_host_conf


def test_a_named_settings_file_that_does_not_exist_is_an_error(tmp_path):
    missing = str(tmp_path / 'host.conf')
    with pytest.raises(V3veeError, match='Cannot read the host settings file %s .*V3VEE_HOST_CONF.*No such file'
                       % missing):
        Settings.resolve({}, environ={'V3VEE_HOST_CONF': missing})


def test_a_named_settings_file_that_cannot_be_read_is_an_error(tmp_path):
    with pytest.raises(V3veeError, match='Is a directory'):
        Settings.resolve({}, environ={'V3VEE_HOST_CONF': str(tmp_path)})


def test_the_default_settings_file_may_be_absent(tmp_path):
    assert read_host_conf(str(tmp_path / 'host.conf')) == {}


def test_a_named_settings_file_is_read(tmp_path):
    conf = tmp_path / 'host.conf'
    conf.write_text('V3VEE_PROC_DIR=/sim/proc/v3vee  # simulated\n')
    settings = Settings.resolve({}, environ={'V3VEE_HOST_CONF': str(conf)})
    assert settings.proc_dir == '/sim/proc/v3vee' and settings.host_conf == str(conf)

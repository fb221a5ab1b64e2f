"""Installing the plugin into an existing environment leaves its torch alone (offline, in a
throw-away venv whose torch and numpy are stand-ins with the versions a GPU user has)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fake_distribution(site, name, version):
    """A package pip sees as installed at `version` (metadata and a module saying so)."""
    info = site / f'{name}-{version}.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
    (info / 'RECORD').write_text('')
    (info / 'INSTALLER').write_text('pip\n')
    (site / name).mkdir()
    (site / name / '__init__.py').write_text(f"__version__ = '{version}'\n")


def venv_with(tmp_path, torch_version):
    venv = tmp_path / f'venv-{torch_version}'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    site = Path(subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                               capture_output=True, text=True, check=True).stdout.strip())
    fake_distribution(site, 'torch', torch_version)
    fake_distribution(site, 'numpy', '1.26.4')
    return python, site


def plugin_wheel(tmp_path):
    """The plugin built as a wheel by this environment, from a copy of its sources (pip builds
    in the source tree)."""
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('setup.py', 'LICENSE', 'README.md', 'MANIFEST.in', 'model-index.yml'):
        shutil.copy(ROOT / name, src / name)
    for name in ('odconv_mmdet', 'configs', 'tools'):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns('__pycache__', '.mim'))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-index', '--no-build-isolation',
                    '--disable-pip-version-check', '-w', str(tmp_path / 'dist'), str(src)],
                   capture_output=True, check=True, timeout=300)
    wheels = list((tmp_path / 'dist').glob('odconv_mmdet-*.whl'))
    assert len(wheels) == 1
    return wheels[0]


def pip_install(python, wheel):
    # No index and no configured find-links (PIP_CONFIG_FILE): only what is installed can satisfy
    # the requirements, so any attempt to replace torch or numpy fails the install.
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull)
    env.pop('PIP_FIND_LINKS', None)
    return subprocess.run([str(python), '-m', 'pip', 'install', '--no-index', '--disable-pip-version-check',
                           str(wheel)], capture_output=True, text=True, timeout=300, env=env)


def test_install_keeps_an_existing_cuda_torch(tmp_path):
    python, site = venv_with(tmp_path, '2.1.2+cu121')
    result = pip_install(python, plugin_wheel(tmp_path))
    # --no-index: had pip wanted any other torch or numpy, it could not have found one
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (site / 'torch-2.1.2+cu121.dist-info').is_dir()
    assert (site / 'torch' / '__init__.py').read_text() == "__version__ = '2.1.2+cu121'\n"
    installed = subprocess.run([str(python), '-m', 'pip', 'list', '--format=freeze'], capture_output=True,
                               text=True).stdout.splitlines()
    assert 'torch==2.1.2+cu121' in installed and 'numpy==1.26.4' in installed
    assert any(line.startswith('odconv_mmdet==') or line.startswith('odconv-mmdet==') for line in installed)


def test_install_asks_for_a_torch_the_layer_supports(tmp_path):
    python, _ = venv_with(tmp_path, '1.13.1')
    result = pip_install(python, plugin_wheel(tmp_path))
    assert result.returncode != 0
    assert 'torch>=2.0' in result.stdout + result.stderr


# ---------------------------------------------------------------- the wheel's content, installed

WHEEL_TEST = r'''
import json, os, sys
import odconv_mmdet
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmdet.registry import MODELS
package = os.path.dirname(odconv_mmdet.__file__)
mim = os.path.join(package, '.mim')
config = Config.fromfile(os.path.join(mim, 'configs', 'shapes', 'faster-rcnn_odr18-k4_fpn_shapes.py'))
init_default_scope('mmdet')
model = MODELS.build(config.model)
print(json.dumps(dict(package=package, path=sys.path, mim=sorted(os.listdir(mim)),
                      odconv_layers=len(odconv_mmdet.odconv_layers(model)))))
'''


def stack_venv(tmp_path):
    """A fresh venv whose own site-packages is empty, on top of this stack's packages (a .pth
    that appends this interpreter's site-packages to the path: its own .pth files, among them
    this checkout's editable install, are not processed there)."""
    import sysconfig
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    site = Path(subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / 'stack.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    return python, site


def test_the_wheel_carries_configs_tools_and_model_index_and_they_work_installed(tmp_path):
    """Built as a wheel and installed (--no-deps) into a fresh venv on top of this stack, the
    plugin carries configs/, tools/ and model-index.yml in odconv_mmdet/.mim/, as mmdet does:
    an installed config builds, `mim search odconv_mmdet` lists the models and `mim train mmdet`
    trains an installed config for an iteration."""
    import zipfile
    wheel = plugin_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {p.relative_to(ROOT).as_posix() for p in (ROOT / 'configs').rglob('*') if p.is_file()
               and p.suffix in ('.py', '.md', '.yml')}
    tools = {p.relative_to(ROOT).as_posix() for p in (ROOT / 'tools').rglob('*') if p.is_file()
             and p.suffix in ('.py', '.sh')}
    assert {'odconv_mmdet/.mim/' + name for name in configs | tools | {'model-index.yml'}} <= names
    python, site = stack_venv(tmp_path)
    result = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '--target', str(site),
                             '--disable-pip-version-check', str(wheel)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    work = tmp_path / 'elsewhere'  # no checkout on the path: not the cwd, not an editable install
    work.mkdir()
    result = subprocess.run([str(python), '-c', WHEEL_TEST], capture_output=True, text=True, timeout=300, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(found['package']) == site / 'odconv_mmdet'
    assert not any(Path(p).resolve() == ROOT for p in found['path'] if p)
    assert found['mim'] == ['configs', 'model-index.yml', 'tools'] and found['odconv_layers'] == 16
    # mim (tools/setup_env.sh installs it in both stacks), with any network access made to fail:
    # `mim search` lists the installed index, `mim train mmdet` trains an installed config.
    mim = site / 'odconv_mmdet' / '.mim'
    data = tmp_path / 'shapes'
    offline = dict(os.environ, HTTP_PROXY='http://127.0.0.1:9', HTTPS_PROXY='http://127.0.0.1:9', NO_PROXY='')
    run = dict(capture_output=True, text=True, timeout=600, cwd=work, env=offline)
    mim_cli = [str(python), '-W', 'ignore', '-c', 'from mim.cli import cli; cli()']
    result = subprocess.run(mim_cli + ['search', 'odconv_mmdet'], **run)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    listed = result.stdout.replace('\n', '')
    for name in ('faster-rcnn_odr50-k4_fpn_1x_coco', 'odresnet50-k4_8xb32_in1k', 'faster-rcnn_odr18-k4_fpn_shapes',
                 'dyconv-resnet18-quarter-k4_10e_shapes-cls'):
        assert name in listed, result.stdout[-3000:]
    result = subprocess.run([str(python), str(mim / 'tools/misc/generate_shapes.py'), '--out', str(data),
                             '--num-train', '2', '--num-val', '1'], **run)
    assert result.returncode == 0, result.stderr[-3000:]
    result = subprocess.run(
        mim_cli + ['train', 'mmdet', str(mim / 'configs/shapes/faster-rcnn_odr18-k4_fpn_shapes.py'), '--gpus', '0',
                   '--work-dir', str(tmp_path / 'run'), '--cfg-options', 'train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
         'val_dataloader.persistent_workers=False', f'train_dataloader.dataset.data_root={data}/',
         f'val_dataloader.dataset.data_root={data}/', f'val_evaluator.ann_file={data}/annotations/val.json'], **run)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / 'run' / 'epoch_1.pth').is_file()
    # by name: mim finds the config in the installed package and runs its own tools/train.py
    result = subprocess.run(
        mim_cli + ['train', 'odconv_mmdet', 'faster-rcnn_r18_fpn_shapes.py', '--gpus', '0', '--work-dir',
                   str(tmp_path / 'run2'), '--cfg-options', 'train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
                   'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                   'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
                   f'train_dataloader.dataset.data_root={data}/', f'val_dataloader.dataset.data_root={data}/',
                   f'val_evaluator.ann_file={data}/annotations/val.json'], **run)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{mim / 'tools' / 'train.py'} {mim / 'configs' / 'shapes' / 'faster-rcnn_r18_fpn_shapes.py'}" in result.stdout
    assert (tmp_path / 'run2' / 'epoch_1.pth').is_file()
    assert re.search(r'Epoch\(train\) +\[1\]\[1/1\]', result.stdout + result.stderr)

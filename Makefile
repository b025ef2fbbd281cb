# Two commands do all set-up: `make demo` and `make test` create .venv when it is missing.
# torch is pinned in constraints.txt: unpinned, pip would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test teacher i2i-teachers vocoder-teacher enhance-teacher speaker-encoder convert-teacher convert-cycle-teacher clone-teacher enhance-mask-teacher translate-teacher style-teacher cyclegan-teacher clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	# the FID Inception-v3 network (--features inception); --no-deps: it needs only torch, and
	# its torchvision dependency cannot load beside a CPU-only torch
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt torch-fidelity
	touch $(STAMP)

# The main job: distil the shipped glyph teacher into an 18x cheaper student, evaluate
# both, and write a comparison report (teacher vs student samples side by side).
demo: $(STAMP)
	$(BIN)/kdgan distill --config configs/demo.yaml --out runs/demo/student --overwrite
	$(BIN)/kdgan evaluate glyph_teacher --samples 5000 --out runs/demo/teacher
	$(BIN)/kdgan evaluate runs/demo/student --samples 5000
	$(BIN)/kdgan compare runs/demo/teacher runs/demo/student --out runs/demo/report
	@echo "teacher (left) vs student (right): runs/demo/student/samples/$$(ls runs/demo/student/samples | tail -n 1)"
	@echo "report: runs/demo/report/report.md (and report.html)"

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# Re-create the teacher that ships in src/kdgan/pretrained/glyph_teacher (~35 min on 2 cores).
teacher: $(STAMP)
	$(BIN)/kdgan train --config configs/glyph_teacher.yaml --out runs/glyph_teacher --overwrite
	$(BIN)/kdgan export runs/glyph_teacher --format safetensors --out src/kdgan/pretrained/glyph_teacher

# Re-create the image-to-image teachers that ship in src/kdgan/pretrained (SR x4, inpainting,
# edges -> photo; 2,000 steps each, about 15-25 min each on 2 cores).
i2i-teachers: $(STAMP)
	for task in sr inpainting edges; do \
	  $(BIN)/kdgan train --config configs/$${task}_teacher.yaml --out runs/$${task}_teacher --overwrite && \
	  $(BIN)/kdgan export runs/$${task}_teacher --format safetensors --out src/kdgan/pretrained/$${task}_teacher; \
	done

# Re-create the vocoder teacher that ships in src/kdgan/pretrained/vocoder_teacher (40,000
# steps, 36,000 of them without the discriminator: about 55 minutes on 2 idle cores).
vocoder-teacher: $(STAMP)
	$(BIN)/kdgan train --config configs/vocoder_teacher.yaml --out runs/vocoder_teacher --overwrite
	$(BIN)/kdgan export runs/vocoder_teacher --format safetensors --out src/kdgan/pretrained/vocoder_teacher

# the speech enhancement teacher: about 40 minutes on 2 cores
enhance-teacher: $(STAMP)
	$(BIN)/kdgan train --config configs/enhance_teacher.yaml --out runs/enhance_teacher --overwrite
	$(BIN)/kdgan export runs/enhance_teacher --format safetensors --out src/kdgan/pretrained/enhance_teacher

# the spectral-mask speech enhancement teacher
enhance-mask-teacher: $(STAMP)
	$(BIN)/kdgan train --config configs/enhance_mask_teacher.yaml --out runs/enhance_mask_teacher --overwrite
	$(BIN)/kdgan export runs/enhance_mask_teacher --format safetensors --out src/kdgan/pretrained/enhance_mask_teacher

# the voice conversion teacher (kal16 -> awb): a few minutes on 2 cores
convert-teacher: $(STAMP)
	$(BIN)/kdgan train --config configs/convert_teacher.yaml --out runs/convert_teacher --overwrite
	$(BIN)/kdgan export runs/convert_teacher --format safetensors --out src/kdgan/pretrained/convert_teacher

# the unparallel (CycleGAN-VC) conversion teacher: its A -> B half is exported
convert-cycle-teacher: $(STAMP)
	$(BIN)/kdgan train --config configs/convert_cycle_teacher.yaml --out runs/convert_cycle_teacher --overwrite
	$(BIN)/kdgan export runs/convert_cycle_teacher --format safetensors --out src/kdgan/pretrained/convert_cycle_teacher

# the voice cloning teacher (any training voice -> any voice given by reference clips)
clone-teacher: $(STAMP)
	$(BIN)/kdgan train --config configs/clone_teacher.yaml --out runs/clone_teacher --overwrite
	$(BIN)/kdgan export runs/clone_teacher --format safetensors --out src/kdgan/pretrained/clone_teacher

# the English -> Spanish translation teacher: 12,000 maximum-likelihood steps, about 70 minutes on 2 idle cores
translate-teacher: $(STAMP)
	$(BIN)/kdgan train --config configs/translate_teacher.yaml --out runs/translate_teacher --overwrite
	$(BIN)/kdgan export runs/translate_teacher --format safetensors --out src/kdgan/pretrained/translate_teacher

# the King James -> World English Bible style transfer teacher: 8,000 maximum-likelihood steps, about 55 minutes on 2 idle cores
style-teacher: $(STAMP)
	$(BIN)/kdgan train --config configs/style_teacher.yaml --out runs/style_teacher --overwrite
	$(BIN)/kdgan export runs/style_teacher --format safetensors --out src/kdgan/pretrained/style_teacher

# the serif -> sans glyph CycleGAN teacher: its A -> B half (and sans judge) is shipped; about 35 minutes on 2 cores
cyclegan-teacher: $(STAMP)
	$(BIN)/kdgan train --config configs/cyclegan_teacher.yaml --out runs/cyclegan_teacher --overwrite --set log.eval_checkpoints=true
	$(BIN)/kdgan export runs/cyclegan_teacher --format safetensors --out src/kdgan/pretrained/cyclegan_teacher

# the speaker encoder voice conversion is scored with and cloning is conditioned on: about a minute
speaker-encoder: $(STAMP)
	$(BIN)/kdgan features train speech --out src/kdgan/pretrained/speaker_encoder

clean:
	rm -rf $(VENV) runs

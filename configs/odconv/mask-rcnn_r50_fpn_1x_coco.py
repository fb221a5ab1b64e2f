# Baseline: mmdet's own Mask R-CNN R-50 FPN 1x (torchvision ImageNet weights; box/mask AP 38.2/34.6).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
